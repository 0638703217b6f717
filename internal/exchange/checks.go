package exchange

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/vaspapi"
)

// Bounds of the synchronous checks. The answering enclave gives its VASP's API
// ENCLAVE_VASP_API_TIMEOUT (at most MaxCheckVASPTimeout); the asking enclave waits for it that
// long plus CheckMargin, so an answering enclave configured alike answers its REQUEST-TIMEOUT
// before the asker gives up, and the asker gives up anyway if not. Both stay well inside the
// HTTP server's write timeout (ENCLAVE_HTTP_WRITE_TIMEOUT, 30 s by default; set lower than the
// check's bound, the answer would be cut).
const (
	CheckMargin         = 2 * time.Second
	MaxCheckVASPTimeout = 18 * time.Second
)

// CheckTimeout is how long a synchronous check waits for the counterparty's enclave when the
// VASP API timeout is vaspTimeout (0: vaspapi.DefaultTimeout).
func CheckTimeout(vaspTimeout time.Duration) time.Duration {
	return checkVASPTimeout(vaspTimeout) + CheckMargin
}

func checkVASPTimeout(vaspTimeout time.Duration) time.Duration {
	if vaspTimeout <= 0 {
		vaspTimeout = vaspapi.DefaultTimeout
	}
	return min(vaspTimeout, MaxCheckVASPTimeout)
}

// Checks are the synchronous checks between two enclaves (DESIGN.md §13): an account
// verification asked of the beneficiary VASP, a tx inquiry asked of the originator VASP. Each is
// answered in the same HTTP exchange, within CheckTimeout, and leaves nothing in the database
// or the logs: a check carries a name, and is asked again rather than remembered.
type Checks struct {
	x           *Service
	vasp        *vaspapi.Client
	peers       *signedhttp.Client
	vaspTimeout time.Duration
	log         *slog.Logger
	accounts    *prometheus.CounterVec
	inquiries   *prometheus.CounterVec
}

// NewChecks returns the checks of the exchange x. vasp is this VASP's API (nil: none of it);
// vaspTimeout is ENCLAVE_VASP_API_TIMEOUT.
func NewChecks(x *Service, vasp *vaspapi.Client, vaspTimeout time.Duration, log *slog.Logger, reg prometheus.Registerer) (*Checks, error) {
	c := &Checks{x: x, vasp: vasp, vaspTimeout: checkVASPTimeout(vaspTimeout), log: log,
		peers: signedhttp.New(x.cfg.HTTPClient, CheckTimeout(vaspTimeout)),
		accounts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_account_checks_total",
			Help: "Account verifications, by our role (ORIGINATOR: asked; BENEFICIARY: answered), result and reason."}, []string{"role", "result", "reason"}),
		inquiries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_tx_inquiries_total",
			Help: "Tx inquiries, by our role (BENEFICIARY: asked; ORIGINATOR: answered) and outcome (the transactionStatus, or the error code)."}, []string{"role", "outcome"}),
	}
	if reg != nil {
		for _, m := range []prometheus.Collector{c.accounts, c.inquiries} {
			if err := reg.Register(m); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// ask sends a synchronous check (body, to path) to the counterparty p and waits for its answer
// at most CheckTimeout.
func (c *Checks) ask(ctx context.Context, p Peer, path string, body any) (signedhttp.Answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return signedhttp.Answer{}, err
	}
	return c.peers.Post(ctx, signedhttp.Request{URL: strings.TrimRight(p.URL, "/") + path, Secret: p.Secret, ID: "check_" + uuid.NewString(),
		Header: map[string][]string{"X-Vasp-Id": {c.x.cfg.VaspID}}, Body: b})
}

// withVASPBound bounds a call of this VASP's API made while a counterparty waits.
func (c *Checks) withVASPBound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.vaspTimeout)
}

// badAnswer explains why a counterparty's answer could not be read: strictjson's own words when
// it refused the keys (a key twice, keys differing only in case), else what was expected.
func badAnswer(err error, expected string) error {
	if e, ok := apperr.As(err); ok {
		return e
	}
	return apperr.Bad("%s", expected)
}
