package exchange_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/exchange"
)

// switchable is a counterparty's address that can be stopped and started again on the same
// port, as a process that is killed and restarted: in front of the real enclave.
type switchable struct {
	t      *testing.T
	addr   string
	target atomic.Pointer[httputil.ReverseProxy]
	srv    *http.Server
}

func newSwitchable(t *testing.T) *switchable {
	s := &switchable{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *switchable) URL() string { return "http://" + s.addr }

// to points the address at the enclave at u.
func (s *switchable) to(u string) {
	target, err := url.Parse(u)
	require.NoError(s.t, err)
	s.target.Store(httputil.NewSingleHostReverseProxy(target))
}

func (s *switchable) serve(ln net.Listener) {
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := s.target.Load(); p != nil {
			p.ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})}
	go s.srv.Serve(ln) //nolint:errcheck // ends with Close
}

func (s *switchable) stop() { require.NoError(s.t, s.srv.Close()) }

func (s *switchable) start() {
	ln, err := net.Listen("tcp", s.addr)
	require.NoError(s.t, err, "listen again on the same port")
	s.serve(ln)
}

func vasps(t *testing.T, e *enclavetest.Enclave) []exchange.Counterparty {
	t.Helper()
	r := e.Client.Do("GET", "/v1/vasps", nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var out struct{ Vasps []exchange.Counterparty }
	require.NoError(t, json.Unmarshal(r.Body, &out))
	return out.Vasps
}

// health returns the health e shows of their VASP, and whether it has ever been seen.
func health(t *testing.T, e *enclavetest.Enclave) (string, bool) {
	t.Helper()
	list := vasps(t, e)
	require.Len(t, list, 1)
	require.Equal(t, enclavetest.TheirVasp, list[0].VaspID)
	require.Equal(t, "Their VASP", list[0].VaspName)
	return list[0].Health, list[0].LastSeenAt != nil
}

// TestDirectoryHealth: GET /v1/vasps shows the counterparty UP once probed, DOWN soon after it
// stops, UP again when it returns, the same on a replica that probes nothing itself, and in
// /metrics; GET /v1/vasps/self shows our id and name.
func TestDirectoryHealth(t *testing.T) {
	t.Parallel()
	gate := newSwitchable(t)
	// Probes every second: each bounded by that second too, which a loaded machine meets (at
	// 200 ms, the probe of a healthy counterparty timed out under the whole suite's load and
	// it stayed DOWN). A stopped counterparty refuses the connection at once either way.
	fast := func(c *config.Config) { c.PeerProbeInterval = time.Second }
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) {
		o.Config = fast
		if i == 0 {
			o.Config = func(c *config.Config) {
				fast(c)
				c.Peers[0].URL = gate.URL()
				c.VASPName = "Our VASP"
			}
		}
	})
	gate.to(theirs.URL)
	replica := enclavetest.Start(t, enclavetest.Options{DSN: ours.DSN, APIOnly: true, Config: func(c *config.Config) {
		*c = ours.Config
	}})

	up := func(e *enclavetest.Enclave) func() bool {
		return func() bool { h, seen := health(t, e); return h == exchange.HealthUp && seen }
	}
	require.Eventually(t, up(ours), wait, 50*time.Millisecond)
	require.Eventually(t, up(replica), wait, 50*time.Millisecond, "a replica answers from the same table")
	list := vasps(t, theirs)
	require.Len(t, list, 1)
	require.Equal(t, enclavetest.OurVasp, list[0].VaspID)
	require.Eventually(t, func() bool { return vasps(t, theirs)[0].Health == exchange.HealthUp }, wait, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(string(ours.Client.Do("GET", "/metrics", nil, nil).Body),
			`enclave_counterparty_up{vaspId="`+enclavetest.TheirVasp+`"} 1`)
	}, wait, 50*time.Millisecond)

	gate.stop()
	require.Eventually(t, func() bool { h, seen := health(t, ours); return h == exchange.HealthDown && seen }, wait, 50*time.Millisecond,
		"DOWN once it stops, still with when it was last seen")
	require.Eventually(t, func() bool {
		return strings.Contains(string(ours.Client.Do("GET", "/metrics", nil, nil).Body),
			`enclave_counterparty_up{vaspId="`+enclavetest.TheirVasp+`"} 0`)
	}, wait, 50*time.Millisecond)
	require.Contains(t, ours.Logs.String(), "counterparty is DOWN")

	gate.start()
	require.Eventually(t, up(ours), wait, 50*time.Millisecond, "UP again once it returns")

	r := ours.Client.Do("GET", "/v1/vasps/self", nil, nil)
	require.Equal(t, 200, r.Status)
	require.JSONEq(t, `{"vaspId":"`+enclavetest.OurVasp+`","vaspName":"Our VASP"}`, string(r.Body))
	r = theirs.Client.Do("GET", "/v1/vasps/self", nil, nil)
	require.JSONEq(t, `{"vaspId":"`+enclavetest.TheirVasp+`","vaspName":null}`, string(r.Body))
	unauth := *ours.Client
	unauth.Bearer = ""
	require.Equal(t, 403, unauth.Do("GET", "/v1/vasps", nil, nil).Status)
}

// TestExchangeIsASighting: with the probe off, a message delivered to the counterparty and
// one received from it each move its lastSeenAt; its health stays the probes' to tell (DOWN).
func TestExchangeIsASighting(t *testing.T) {
	t.Parallel()
	e := enclavetest.Start(t, enclavetest.Options{}) // ENCLAVE_PEER_PROBE_INTERVAL=0: no probe
	require.Nil(t, vasps(t, e)[0].LastSeenAt, "never seen")

	id := e.CreateOutgoing("ETH", "Ethereum", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	require.Eventually(t, func() bool {
		var st string
		return e.DB.Get(&st, `SELECT status FROM peer_messages WHERE verification_uuid = $1`, id) == nil && st == exchange.StatusDelivered
	}, 20*time.Second, 20*time.Millisecond)
	v := vasps(t, e)[0]
	require.NotNil(t, v.LastSeenAt, "it acknowledged our message")
	require.Equal(t, exchange.HealthDown, v.Health, "never probed")

	_, err := e.DB.Exec(`UPDATE counterparty_health SET last_seen_at = NULL`)
	require.NoError(t, err)
	e.ReceiveIncoming("5a0e4c4e-7a54-4bb4-9d8c-1d8d3c0f6b21", "ETH", "Ethereum", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	require.NotNil(t, vasps(t, e)[0].LastSeenAt, "it sent us a message")
}
