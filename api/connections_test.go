package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
)

// rawConn opens a real socket to the enclave at base; a test that fails never hangs on it.
func rawConn(t *testing.T, base string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return c
}

// answerThenClosed reads one answer from c, then requires the enclave to close the connection.
func answerThenClosed(t *testing.T, c net.Conn) (*http.Response, apiError) {
	t.Helper()
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err, "an answer arrived")
	var e apiError
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	resp.Body.Close()
	require.True(t, resp.Close, "Connection: close")
	_, err = r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "and the enclave closed the connection without waiting for the body")
	return resp, e
}

// TestRefusedBeforeTheBodyIsAnsweredAtOnceAndClosed: a request refused before its body is
// needed — no or a wrong key, a peer the peers file does not name, a body declared too large,
// no such route — is answered at once with Connection: close, and the connection is closed
// though the body never comes: a client trickling it holds nothing.
func TestRefusedBeforeTheBodyIsAnsweredAtOnceAndClosed(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{APIOnly: true})
	for _, c := range []struct {
		name, head string
		status     int
		code       string
	}{
		{"NoKey", "POST /v1/verifications HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n", 403, "UNKNOWN-ERROR-CODE"},
		{"WrongKey", "POST /v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 100000\r\n", 403, "UNKNOWN-ERROR-CODE"},
		{"UnknownPeer", "POST /peer/v1/verifications HTTP/1.1\r\nHost: x\r\nX-Vasp-Id: 999\r\nContent-Length: 100000\r\n", 403, "UNKNOWN-ERROR-CODE"},
		{"Chunked", "POST /peer/v1/verifications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", 403, "UNKNOWN-ERROR-CODE"},
		{"TooLarge", "POST /v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + et.APIKey + "\r\nContent-Length: 2000000\r\n", 413, "PAYLOAD-TOO-LARGE"},
		{"NoRoute", "POST /v1/nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n", 404, "NOT-FOUND"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := rawConn(t, e.URL)
			_, err := io.WriteString(conn, c.head+"Content-Type: application/json\r\n\r\n{")
			require.NoError(t, err)
			resp, body := answerThenClosed(t, conn)
			require.Equal(t, c.status, resp.StatusCode)
			require.Equal(t, c.code, body.Code)
		})
	}
}

// TestTrickledBodyIsCutOff: a body that arrives a byte every 2 s on a route that needs it (a
// peer's signed message, from a peer id anyone can name) is cut off once it falls behind the
// minimum rate — here with the read timeout at 10 minutes, so nothing else could end it — and
// the connection closed; a large body at a modest steady pace is read whole.
func TestTrickledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{APIOnly: true, Config: func(c *config.Config) { c.HTTPReadTimeout = 10 * time.Minute }})
	t.Run("Trickle", func(t *testing.T) {
		t.Parallel()
		conn := rawConn(t, e.URL)
		_, err := io.WriteString(conn, "POST /peer/v1/verifications HTTP/1.1\r\nHost: x\r\nX-Vasp-Id: "+et.TheirVasp+
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
		require.NoError(t, err)
		answered := make(chan struct{})
		go func() { // the trickle, until the enclave answers or closes
			for i := 0; i < 1000; i++ {
				select {
				case <-answered:
					return
				case <-time.After(2 * time.Second):
				}
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		resp, body := answerThenClosed(t, conn)
		close(answered)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, body.Message, "arrived too slowly")
	})
	// 200 KiB at 25 KiB a second: longer than the grace, above the minimum rate.
	t.Run("SteadyLargeBody", func(t *testing.T) {
		t.Parallel()
		conn := rawConn(t, e.URL)
		chunk := `"` + strings.Repeat("a", 25<<10-2) + `"`
		n := 8
		_, err := io.WriteString(conn, fmt.Sprintf("POST /v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n[", et.APIKey, 1+n*len(chunk)+(n-1)+1))
		require.NoError(t, err)
		for i := range n {
			if i > 0 {
				time.Sleep(time.Second)
				_, err = io.WriteString(conn, ",")
				require.NoError(t, err)
			}
			_, err = io.WriteString(conn, chunk)
			require.NoError(t, err)
		}
		_, err = io.WriteString(conn, "]")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		var e2 apiError
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e2))
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "read whole, then refused for its shape")
		require.NotContains(t, e2.Message, "too slowly")
		require.Contains(t, e2.Message, "want a JSON object", "%s", e2.Message)
	})
}

// TestAnswersAreNotCachedOrSniffed: every answer is nosniff; every /v1 and /peer/v1 answer,
// success or error, is no-store (they carry personal data).
func TestAnswersAreNotCachedOrSniffed(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{APIOnly: true})
	v := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	for _, r := range []struct {
		name   string
		answer func() http.Header
		store  bool
	}{
		{"Verification", func() http.Header { return e.Client.Do("GET", "/v1/verifications/"+v, nil, nil).Header }, false},
		{"List", func() http.Header { return e.Client.Do("GET", "/v1/verifications?include=payload", nil, nil).Header }, false},
		{"Error", func() http.Header { return e.Client.Do("GET", "/v1/verifications/nope", nil, nil).Header }, false},
		{"Peer", func() http.Header { return e.Peer("/peer/v1/verifications/tx", []byte(`{}`)).Header }, false},
		{"Healthz", func() http.Header { return e.Client.Do("GET", "/healthz", nil, nil).Header }, true},
		{"NoKey", func() http.Header {
			return e.Client.With(t).Do("GET", "/v1/callbacks", nil, http.Header{"Authorization": {"Bearer wrong"}}).Header
		}, false},
		{"NoRoute", func() http.Header { u := *e.Client; u.Unchecked = true; return u.Do("GET", "/v1", nil, nil).Header }, false},
		{"MalformedQuery", func() http.Header {
			r := e.Client.Do("GET", "/v1/verifications?txHash=%zz", nil, nil)
			require.Equal(t, 400, r.Status)
			require.Contains(t, string(r.Body), `"message":"the query string is malformed: invalid URL escape \"%zz\""`)
			return r.Header
		}, false},
	} {
		h := r.answer()
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), r.name)
		if r.store {
			require.Empty(t, h.Get("Cache-Control"), r.name)
		} else {
			require.Equal(t, "no-store", h.Get("Cache-Control"), r.name)
		}
	}
}
