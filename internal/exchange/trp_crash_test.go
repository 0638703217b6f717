package exchange_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/openapitest"
	"github.com/travelrule/enclave/webhook"
)

// followingProxy is a fixed URL in front of a child enclave's listener, which moves to another
// port at every restart: the counterparty keeps the URLs it was given (a TRP callback).
func followingProxy(t *testing.T) (*httptest.Server, *atomic.Value) {
	var addr atomic.Value
	addr.Store("127.0.0.1:1")
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := url.Parse("http://" + addr.Load().(string))
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) } // the child is down
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p, &addr
}

// TestTRPCrashAtEveryStepLosesNothing is TestCrashAtEveryStepLosesNothing over TRP: either
// enclave is killed with SIGKILL at a step of the TRP exchange, before the step is recorded,
// and restarted; the verification still reaches VERIFIED with exactly one
// VERIFICATION_RESULT, and the tx report one TX_REPORT at the beneficiary's VASP.
func TestTRPCrashAtEveryStepLosesNothing(t *testing.T) {
	et.Slow(t, "kills and restarts enclaves")
	t.Parallel()
	for _, c := range []struct {
		originatorCrashes bool
		step              string
		afterTx           bool
		skip              int
	}{
		{true, "sent", false, 0},   // our inquiry answered {"version"} by the beneficiary
		{false, "asked", false, 0}, // the beneficiary's VASP answered Verify User
		{false, "sent", false, 0},  // the approval acknowledged by the originator's callback
		{true, "sent", true, 1},    // the txid acknowledged by the approved callback
	} {
		name := map[bool]string{true: "originator", false: "beneficiary"}[c.originatorCrashes] + "-" + c.step
		if c.afterTx {
			name += "-after-tx"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			childTRP, childTRPAddr := followingProxy(t)
			childID, parentID := et.TheirVasp, et.OurVasp
			if c.originatorCrashes {
				childID, parentID = et.OurVasp, et.TheirVasp
			}
			parentTRP := httptest.NewUnstartedServer(nil)
			parent := et.Start(t, et.Options{TRP: true, TRPServer: parentTRP, VerifyUser: c.originatorCrashes, Config: func(cfg *config.Config) {
				cfg.VaspID = parentID
				cfg.Peers = []config.Peer{{VaspID: childID, URL: childTRP.URL + "/transfers", Protocol: config.ProtocolTRP}}
			}})
			parent.Receiver.VerifyUser(beneficiaryVASP)
			childRcv := et.NewReceiver(et.CallbackSecret)
			defer childRcv.Close()
			childRcv.VerifyUser(beneficiaryVASP)
			childDSN := dbtest.URL(t)
			env := []string{"CHILD_DSN=" + childDSN, "CHILD_VASP=" + childID, "CHILD_PEER_ID=" + parentID,
				"CHILD_PEER_URL=" + parent.TRPURL + "/transfers", "CHILD_TRP_URL=" + childTRP.URL,
				"CHILD_CALLBACK_URL=" + childRcv.URL(), "CHILD_KEYSET=" + et.Keyset(t)}
			if !c.originatorCrashes {
				env = append(env, "CHILD_VERIFY_USER_URL="+childRcv.VerifyUserURL())
			}
			start := func(extra ...string) *et.Child {
				ch := et.StartChild(t, append(env, extra...)...)
				childTRPAddr.Store(trpAddr(ch.Expect(t, "TRP ")))
				return ch
			}
			child := start("CHILD_CRASH_AT="+c.step, "CHILD_CRASH_SKIP="+strconv.Itoa(c.skip))

			childDB, err := sqlx.Open("postgres", childDSN)
			require.NoError(t, err)
			defer childDB.Close()
			originator, originatorRcv, beneficiaryRcv, beneficiaryDB := parent.Client, parent.Receiver, childRcv, childDB
			if c.originatorCrashes {
				originator = &openapitest.Client{T: t, Base: "http://" + child.Addr, Bearer: et.APIKey}
				originatorRcv, beneficiaryRcv, beneficiaryDB = childRcv, parent.Receiver, parent.DB
			}
			crash := func() {
				t.Helper()
				child.Expect(t, "CRASH "+c.step)
				child.Kill()
				et.ExpireLeadership(t, childDSN)
				time.Sleep(crashedJobsRescuable)
				child = start()
				if c.originatorCrashes {
					originator.Base = "http://" + child.Addr
				}
			}

			exchangeThroughCrash(t, name, originator, originatorRcv, beneficiaryRcv, c.afterTx, crash, func(string) string {
				var inbound string
				require.NoError(t, beneficiaryDB.Get(&inbound, `SELECT uuid FROM verifications WHERE role = 'BENEFICIARY'`))
				return inbound
			})
			for _, db := range []*sqlx.DB{parent.DB, childDB} {
				var n int
				require.NoError(t, db.Get(&n, `SELECT count(*) FROM verifications`))
				require.Equal(t, 1, n, "one verification on each side: the retried inquiry found its own")
				require.Eventually(t, func() bool {
					return db.Get(&n, `SELECT count(*) FROM peer_messages WHERE status <> 'DELIVERED'`) == nil && n == 0
				}, 90*time.Second, 100*time.Millisecond, "every message delivered")
			}
		})
	}
}

// trpAddr is the address of a child's "TRP <addr>" line.
func trpAddr(line string) string { return line[len("TRP "):] }

// TestTRPMessagesInOrder: while the beneficiary's TRP endpoint fails, the tx report made
// meanwhile waits behind the inquiry — it needs the approved callback the inquiry's answer
// brings — and every attempt of the inquiry carries the same request-identifier.
func TestTRPMessagesInOrder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string // "inquiry <request-identifier>", "txid"
	var fails atomic.Int32
	fails.Store(4)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/transfers":
			seen = append(seen, "inquiry "+r.Header.Get("request-identifier"))
			if fails.Add(-1) >= 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"approved":{"address":"`+beneficiaryAddr+`","callback":"`+srv.URL+`/confirm"}}`) //nolint:errcheck
		case "/confirm":
			var c struct{ TxID string }
			json.Unmarshal(b, &c) //nolint:errcheck
			seen = append(seen, "txid "+c.TxID)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ours := et.Start(t, et.Options{TRP: true, Config: func(c *config.Config) {
		c.Peers = []config.Peer{{VaspID: et.TheirVasp, URL: srv.URL + "/transfers", Protocol: config.ProtocolTRP}}
	}})
	id := et.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	ours.ReportTx(id, et.TxHash(id)) // before the inquiry is through
	require.Equal(t, "VERIFIED", ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait).Verification.Result)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1] == "txid "+et.TxHash(id)
	}, wait, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 6, "five tries of the inquiry, then the txid: %v", seen)
	for _, s := range seen[:5] {
		require.Equal(t, seen[0], s, "one request-identifier across retries")
	}
}

// TestTRPLateDecision: a TRP beneficiary that said "later" ({"version"}) and decides after our
// verification timed out is answered 409 CONFLICT: the verification keeps its one result,
// ERROR / REQUEST-TIMEOUT. The timeout's error report has nowhere to go over TRP (no approved
// callback) and shows FAILED, saying so.
func TestTRPLateDecision(t *testing.T) {
	t.Parallel()
	var callback atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Callback string }
		json.NewDecoder(r.Body).Decode(&in) //nolint:errcheck
		callback.Store(in.Callback)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"version":"3.1.0"}`) //nolint:errcheck
	}))
	defer srv.Close()
	ours := et.Start(t, et.Options{TRP: true, Config: func(c *config.Config) {
		c.Peers = []config.Peer{{VaspID: et.TheirVasp, URL: srv.URL + "/transfers", Protocol: config.ProtocolTRP}}
		c.VerificationTimeout = time.Second
	}})
	id := et.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	res := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait)
	require.Equal(t, "ERROR", res.Verification.Result)
	require.Equal(t, "REQUEST-TIMEOUT", *res.Verification.Reason)

	req, _ := http.NewRequest("POST", callback.Load().(string), strings.NewReader(`{"approved":{"address":"`+beneficiaryAddr+`","callback":"`+srv.URL+`/c"}}`))
	req.Header.Set("api-version", "3.1.0")
	req.Header.Set("request-identifier", "c2f1a1e0-0000-4000-8000-000000000002")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", b)
	require.Equal(t, "ERROR", get(t, ours, id).Result)
	require.Len(t, ours.Receiver.OfType(webhook.TypeVerificationResult, id), 1)
	require.Eventually(t, func() bool {
		r := ours.Client.Do("GET", "/v1/peer-messages?kind=ERROR_REPORT&verificationUuid="+id, nil, nil)
		return r.Status == 200 && strings.Contains(string(r.Body), `"status":"FAILED"`) && strings.Contains(string(r.Body), "gave no callback")
	}, wait, 50*time.Millisecond)
}
