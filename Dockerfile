# The enclave as a container image: one static binary on a distroless base (no shell, no
# package manager), running as the base's non-root user. The build stage's `go build` line is
# run, exactly as written here, by the test TestImageRoot (cmd/enclave), which then serves from
# an empty root holding only what this image holds: see the README's "Container image".

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" -o /out/enclave ./cmd/enclave

# distroless/static: CA certificates, /etc/passwd with the user nonroot (65532), tzdata, /tmp.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/enclave /usr/local/bin/enclave
USER nonroot:nonroot
EXPOSE 8080
ENV ENCLAVE_LISTEN_ADDR=:8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["enclave", "healthcheck"]
ENTRYPOINT ["enclave"]
CMD ["serve"]
