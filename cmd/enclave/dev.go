package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/internal/pglocal"
	"github.com/travelrule/enclave/internal/seal"
)

// The dev enclaves' identities and the story's data.
const (
	devVasp         = "10000000000000000001"
	devCounterparty = "20000000000000000002"
	devSanctioned   = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	devOurWallet    = "0x3d21a92285bf17cbdde5f77531b8b58ac400288a"
	devTxHash       = "0xe823c9b7895f9c47985c80e4611272f8194403e885c9cc603422cd609d738098"
	// devTheirWallet is the counterparty's customer's wallet (clean for kytsim); devListed a
	// person both demo VASPs list as sanctioned.
	devTheirWallet = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0a"
	devListed      = "Mallory Lazarus"
	// The monitoring story: a transfer to the Address Screening example's clean private wallet,
	// identified as sanctioned after the transfer was processed.
	devLaterSanctioned = "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"
	devLaterTxHash     = "0x5b0f1c7e3d2a4f6e8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"
	// devTRPTxHash is the transaction of the story's transfer over TRP.
	devTRPTxHash = "0x7a1d4c2e9b3f5a6d8c0e2f4a6b8d0c2e4f6a8b0d2c4e6f8a0b2d4c6e8f0a2b4c"
	// The KYT guide's received transfer: 0.0000867 BTC to our address, from an OFAC-designated
	// sender.
	devDepositTx      = "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011"
	devDepositAddress = "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7"
	devDepositAmount  = "0.0000867"
)

const devEnv = `  DATABASE_URL             use this PostgreSQL instead of a local one under --data-dir (the demo
                           counterparty's database is made beside it, named <database>_counterparty)
  CHAINALYSIS_KYT_API_URL  use this KYT API (with CHAINALYSIS_KYT_API_KEY) instead of kytsim in-process
  CHAINALYSIS_RISK_API_URL use this Address Screening API (with CHAINALYSIS_RISK_API_KEY) instead of kytsim
  ENCLAVE_CALLBACK_URL     send our callbacks there (with ENCLAVE_CALLBACK_SECRET, ENCLAVE_CALLBACK_TOKEN)
                           instead of to the in-process demo backend that prints them
  ENCLAVE_PEERS_FILE       more counterparty enclaves, beside the demo counterparty dev always has
`

// devState is what dev keeps beside its data, so that a second start serves the same keys
// to the data the first one left: ours at the top level, the demo counterparty's under
// "counterparty", and the secret the two share as each other's peer.
type devState struct {
	devKeys
	PeerSecret   string  `json:"peerSecret"`
	Counterparty devKeys `json:"counterparty"`
	// PostgresPort is the local PostgreSQL's port, kept so that its DATABASE_URL stays the same
	// from one start to the next (0 until the first start picks a free one).
	PostgresPort int `json:"postgresPort,omitempty"`
}

// saveDevState writes dev.json, readable by its owner only: it holds keys.
func saveDevState(path string, st devState) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("dev: keep keys in %s: %w", path, err)
	}
	return nil
}

// loadDevState reads dev.json, completing and rewriting what it lacks. kept says our API key is
// the one of the last start.
func loadDevState(path string) (st devState, kept bool, err error) {
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &st) //nolint:errcheck // what does not read is made anew
	}
	kept = st.APIKey != "" && st.PeerSecret != "" && st.CallbackSecret != "" && st.DataKeyset != ""
	if kept && st.Counterparty.complete() {
		return st, true, nil
	}
	if st.APIKey == "" || st.PeerSecret == "" || st.CallbackSecret == "" {
		st = devState{devKeys: devKeys{APIKey: randomKey(), CallbackSecret: newSecret(), CallbackToken: randomKey()}, PeerSecret: newSecret(),
			Counterparty: st.Counterparty}
	}
	for _, k := range []*devKeys{&st.devKeys, &st.Counterparty} {
		if k.DataKeyset != "" && k.APIKey != "" {
			continue
		}
		if k.DataKeyset, err = seal.New(); err != nil {
			return st, false, err
		}
		if k.APIKey == "" {
			k.APIKey, k.CallbackSecret, k.CallbackToken = randomKey(), newSecret(), randomKey()
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // dev.json itself is 0600
		return st, false, fmt.Errorf("dev: keep keys in %s: %w", path, err)
	}
	return st, kept, saveDevState(path, st)
}

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("dev", "Run two complete enclaves on this machine with nothing to configure: ours and a demo\n"+
		"counterparty, each with its own database in one local PostgreSQL (kept under --data-dir and\n"+
		"reused), its own port, keys and peers file naming the other; kytsim as Chainalysis KYT; and for\n"+
		"each a demo VASP backend that verifies and prints every callback and answers Verify User and\n"+
		"Verify Account from a printed customer book. Prints the keys and the curl commands of three stories (we send, they\n"+
		"send, monitoring), framed by the directory (the counterparty UP, stopped and DOWN), ready to\n"+
		"paste one at a time; --demo runs them itself and exits 0 once every callback of both sides has\n"+
		"arrived. Keys, and the local PostgreSQL's port, are kept in dev.json beside the data directory,\n"+
		"so the next start serves the same data with the same keys at the same DATABASE_URL.\n\n"+
		"SIGINT or SIGTERM to this process stops everything, PostgreSQL included; so does SIGTERM to\n"+
		"the `go run` that started it, which does not pass it on (dev notices go run is gone). go run\n"+
		"ignores a SIGINT sent to it alone: use SIGTERM, or this process's id, which the story prints.\n"+
		"SIGUSR1 stops the demo counterparty's API, and starts it again.", devEnv, stderr)
	listen := fs.String("listen", ":8080", "listen address of our enclave's API")
	counterpartyListen := fs.String("counterparty-listen", "127.0.0.1:8081", "listen address of the demo counterparty enclave's API")
	dataDir := fs.String("data-dir", filepath.Join(".enclave", "pgdata"), "where the local PostgreSQL keeps its data (git-ignored); when\n"+
		"run as root and the postgres user cannot reach it, dev keeps the data under /var/tmp instead and says where")
	demo := fs.Bool("demo", false, "run the three stories (we send, they send, monitoring) and the directory's, and exit")
	transferDelay := fs.Duration("transfer-delay", kytsim.DefaultOptions("").TransferDelay, "how long kytsim takes to process a transfer, as Chainalysis does")
	monitorInterval := fs.Duration("monitor-interval", 2*time.Second, "how often alerts raised later are pulled in (ENCLAVE_KYT_MONITOR_INTERVAL; short here so the story shows one)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, time.Now().Format("15:04:05")+" "+format+"\n", a...)
	}
	ctx = stopWithGoRun(ctx, func() { say("dev: `go run`, which started this process, is gone (killed?); stopping") })

	// The ports first: a second dev finds them taken before touching the database.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("dev: cannot listen on %s: %v; is another `enclave dev` running? Stop it, or pick another address with --listen", *listen, errors.Unwrap(err))
	}
	defer ln.Close()
	theirLn, err := net.Listen("tcp", *counterpartyListen)
	if err != nil {
		return fmt.Errorf("dev: cannot listen on %s for the demo counterparty: %v; is another `enclave dev` running? Stop it, or pick another address with --counterparty-listen",
			*counterpartyListen, errors.Unwrap(err))
	}
	defer theirLn.Close()
	// Each enclave's TRP listener, on a free loopback port: plain HTTP is allowed there only.
	var trpLns [2]net.Listener
	for i := range trpLns {
		if trpLns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("dev: a TRP listener: %w", err)
		}
		defer trpLns[i].Close()
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	stateDir := filepath.Dir(abs)
	st, kept, err := loadDevState(filepath.Join(stateDir, "dev.json"))
	if err != nil {
		return err
	}
	// Monitoring every 2 s, so an alert raised later shows within the story.
	cfg := config.Config{VaspID: devVasp, APIKeys: []string{st.APIKey}, DataKeyset: st.DataKeyset, KYTMaxAge: time.Hour, KYTPollMaxInterval: 2 * time.Second,
		KYTMonitorInterval: *monitorInterval,
		Workers:            100, CallbackWorkers: 100, PeerWorkers: 20, PipelineConnections: 4, ChainalysisTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second,
		// Each counterparty probed every 2 s, so the story shows it DOWN and UP within seconds.
		PeerProbeInterval: 2 * time.Second}
	// The demo counterparty: a second enclave like ours, without monitoring (the story's alerts
	// are ours).
	their := cfg
	their.VaspID, their.APIKeys, their.DataKeyset, their.KYTMonitorInterval = devCounterparty, []string{st.Counterparty.APIKey}, st.Counterparty.DataKeyset, 0
	ourBase, theirBase := "http://"+hostPort(ln.Addr()), "http://"+hostPort(theirLn.Addr())
	// Both speak TRP too (the story sends to the counterparty by a Travel Address): over plain
	// HTTP on loopback, as ENCLAVE_TRP_INSECURE allows.
	for i, c := range []*config.Config{&cfg, &their} {
		c.TRPListenAddr, c.TRPInsecure = trpLns[i].Addr().String(), true
		c.TRPURL = "http://localhost:" + strconv.Itoa(trpLns[i].Addr().(*net.TCPAddr).Port)
	}
	ourPeers, theirPeers := devPeersPaths(stateDir)
	if cfg.Peers, err = writeDevPeers(ourPeers, []config.Peer{{VaspID: devCounterparty, Name: "Dev counterparty", URL: theirBase, Secret: st.PeerSecret}}); err != nil {
		return err
	}
	if their.Peers, err = writeDevPeers(theirPeers, []config.Peer{{VaspID: devVasp, Name: "Dev VASP", URL: ourBase, Secret: st.PeerSecret}}); err != nil {
		return err
	}
	if f := strings.TrimSpace(getenv("ENCLAVE_PEERS_FILE")); f != "" {
		more, err := loadPeersFile(f)
		if err != nil {
			return err
		}
		cfg.Peers = append(cfg.Peers, more...)
	}

	// PostgreSQL: one server, a database for each enclave.
	cfg.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if cfg.DatabaseURL == "" {
		dir := abs
		if err := pglocal.Reachable(dir); err != nil {
			dir = fallbackDataDir(abs)
			say("PostgreSQL: %v;", strings.TrimPrefix(err.Error(), "pglocal: "))
			say("  so its data is kept in %s instead (reused next time; --data-dir chooses another place)", dir)
		}
		if st.PostgresPort == 0 {
			if st.PostgresPort, err = freeLocalPort(); err != nil {
				return err
			}
			if err := saveDevState(filepath.Join(stateDir, "dev.json"), st); err != nil {
				return err
			}
		}
		say("PostgreSQL: starting a local server with data in %s on port %d (kept in dev.json)…", dir, st.PostgresPort)
		opts := pglocal.Options{DataDir: dir, Port: st.PostgresPort, OnStale: func(string) {
			say("PostgreSQL: a server an earlier dev left running there is stopped first")
		}}
		c, err := pglocal.Start(ctx, opts)
		if err != nil && !portFree(st.PostgresPort) {
			// Another program took the port: move, and keep the new one.
			old := st.PostgresPort
			if st.PostgresPort, err = freeLocalPort(); err != nil {
				return err
			}
			if err := saveDevState(filepath.Join(stateDir, "dev.json"), st); err != nil {
				return err
			}
			say("PostgreSQL: port %d is taken by another program; using %d from now on (kept in dev.json)", old, st.PostgresPort)
			opts.Port = st.PostgresPort
			c, err = pglocal.Start(ctx, opts)
		}
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		defer func() {
			say("PostgreSQL: stopping")
			c.Stop() //nolint:errcheck // reported by pg_ctl itself
		}()
		cfg.DatabaseURL = c.URL("postgres")
		say("PostgreSQL: DATABASE_URL=%s (for psql, or `enclave serve`)", cfg.DatabaseURL)
	} else {
		say("PostgreSQL: using DATABASE_URL")
	}
	if their.DatabaseURL, err = counterpartyDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}

	// Chainalysis KYT and Address Screening: kytsim serves both enclaves, unless real ones are named.
	var sim *kytsim.Server
	kytURL, riskURL := strings.TrimSpace(getenv("CHAINALYSIS_KYT_API_URL")), strings.TrimSpace(getenv("CHAINALYSIS_RISK_API_URL"))
	if kytURL == "" || riskURL == "" {
		o := kytsim.DefaultOptions(randomKey())
		o.TransferDelay = *transferDelay
		sim = kytsim.NewServer(o)
		defer sim.Close()
		cfg.KYTAPIURL, cfg.KYTAPIKey = sim.URL+"/api/kyt", o.APIKey
		cfg.RiskAPIURL, cfg.RiskAPIKey = sim.URL+"/api/risk", o.APIKey
		say("Chainalysis: kytsim on %s (KYT under /api/kyt: transfers processed after %s, attempts at once; Address Screening under /api/risk)",
			sim.URL, o.TransferDelay)
		printKnownAddresses(stdout)
	}
	if kytURL != "" {
		cfg.KYTAPIURL, cfg.KYTAPIKey = kytURL, getenv("CHAINALYSIS_KYT_API_KEY")
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "monitor-interval" })
		if !explicit { // a real KYT is not polled every 2 s
			cfg.KYTMonitorInterval = config.DefaultKYTMonitorInterval
		}
		say("Chainalysis KYT: %s (alerts raised later pulled in every %s)", kytURL, cfg.KYTMonitorInterval)
	}
	if riskURL != "" {
		cfg.RiskAPIURL, cfg.RiskAPIKey = riskURL, getenv("CHAINALYSIS_RISK_API_KEY")
		say("Chainalysis Address Screening: %s", riskURL)
	}
	their.KYTAPIURL, their.KYTAPIKey, their.RiskAPIURL, their.RiskAPIKey = cfg.KYTAPIURL, cfg.KYTAPIKey, cfg.RiskAPIURL, cfg.RiskAPIKey

	// The VASPs' backends: each answers its enclave's Verify User API and receives its callbacks.
	var printing sync.Mutex
	cfg.CallbackSecret, cfg.CallbackToken = st.CallbackSecret, st.CallbackToken
	ourCallbacksHere := true
	if u := strings.TrimSpace(getenv("ENCLAVE_CALLBACK_URL")); u != "" {
		cfg.CallbackURL, cfg.CallbackSecret, cfg.CallbackToken = u, getenv("ENCLAVE_CALLBACK_SECRET"), getenv("ENCLAVE_CALLBACK_TOKEN")
		ourCallbacksHere = false
	}
	ours := newDevBackend("us", cfg.CallbackSecret, cfg.CallbackToken, ourBook, stdout, &printing)
	defer ours.Close()
	theirs := newDevBackend("counterparty", st.Counterparty.CallbackSecret, st.Counterparty.CallbackToken, theirBook, stdout, &printing)
	defer theirs.Close()
	cfg.VerifyUserURL, cfg.VerifyAccountURL = ours.VerifyUserURL(), ours.VerifyAccountURL()
	their.VerifyUserURL, their.VerifyAccountURL, their.CallbackURL = theirs.VerifyUserURL(), theirs.VerifyAccountURL(), theirs.URL()
	their.CallbackSecret, their.CallbackToken = st.Counterparty.CallbackSecret, st.Counterparty.CallbackToken
	if ourCallbacksHere {
		cfg.CallbackURL = ours.URL()
		say("VASP backends: in-process, verifying and printing every callback and answering Verify User (ours on %s, the counterparty's on %s)",
			ours.srv.URL, theirs.srv.URL)
	} else {
		say("Callbacks: %s; VASP backends answering Verify User in-process (ours on %s, the counterparty's on %s)", cfg.CallbackURL, ours.srv.URL, theirs.srv.URL)
	}
	if err := cfg.Validate(config.NeedServe); err != nil {
		return err
	}
	if err := their.Validate(config.NeedServe); err != nil {
		return fmt.Errorf("dev: the demo counterparty: %w", err)
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	them, err := startDevEnclave(ctx, their, log.With("enclave", "counterparty"), theirLn, trpLns[1])
	if err != nil {
		return fmt.Errorf("dev: the demo counterparty: %w", err)
	}
	defer them.stop()
	us, err := startDevEnclave(ctx, cfg, log, ln, trpLns[0])
	if err != nil {
		return err
	}
	defer us.stop()

	keyNote := "new, kept in " + filepath.Join(stateDir, "dev.json")
	if kept {
		keyNote = "the same as last time, from " + filepath.Join(stateDir, "dev.json")
	}
	fmt.Fprintf(stdout, "\nenclave dev is serving two enclaves, each other's counterparty (peers files %s, %s):\n", ourPeers, theirPeers)
	fmt.Fprintf(stdout, "  us:           VASP %s on %s, API key: %s (%s)\n", devVasp, us.base, st.APIKey, keyNote)
	fmt.Fprintf(stdout, "  counterparty: VASP %s on %s, API key: %s\n", devCounterparty, them.base, st.Counterparty.APIKey)
	fmt.Fprintf(stdout, "  TRP (OpenVASP Travel Rule Protocol, plain HTTP on loopback): ours on %s, the counterparty's on %s\n\n", cfg.TRPURL, their.TRPURL)
	if err := printConsoleLogin(ctx, stdout, cfg.DatabaseURL, us.base); err != nil {
		return err
	}
	printBooks(stdout)
	fmt.Fprintln(stdout)
	if *demo {
		return runDemo(ctx, stdout, demoSide{whose: "our", base: us.base, apiKey: st.APIKey, backend: ours, callbacksHere: ourCallbacksHere},
			demoSide{whose: "the counterparty's", base: them.base, apiKey: st.Counterparty.APIKey, backend: theirs, callbacksHere: true}, sim, them)
	}
	toggle := make(chan os.Signal, 1) // before the story names the signal
	signal.Notify(toggle, syscall.SIGUSR1)
	defer signal.Stop(toggle)
	graceTA, err := exchange.TRPAddress(their.TRPURL, theirBook.Customers[0].Wallet)
	if err != nil {
		return err
	}
	printStory(stdout, us.base, them.base, st, sim, graceTA)
	for {
		select {
		case err := <-us.served:
			return err
		case err := <-them.served:
			return err
		case <-toggle:
			if them.pause() {
				say("dev: the demo counterparty's API is stopped (SIGUSR1); its workers go on. SIGUSR1 again starts it")
			} else if err := them.resume(); err != nil {
				say("%v", err)
			} else {
				say("dev: the demo counterparty's API serves again on %s (SIGUSR1)", them.base)
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	fmt.Fprintln(stdout, "\nstopping…")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	them.shutdown(sctx) //nolint:errcheck // ours says how the shutdown went
	return us.shutdown(sctx)
}

// stopWithGoRun returns a context that also ends when the `go run` that started this process
// goes away. `go run` does not pass SIGTERM on to its child: `kill $!` after
// `go run ./cmd/enclave dev &` ends the go command only, and would leave dev and its PostgreSQL
// running. A process started any other way is left alone.
func stopWithGoRun(ctx context.Context, said func()) context.Context {
	parent := os.Getppid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", parent))
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					said()
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}

// freeLocalPort picks a TCP port free on the loopback address.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dev: find a free port for PostgreSQL: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree tells whether port can be listened on, on the loopback address.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// fallbackDataDir is where dev keeps a cluster whose requested directory the postgres user
// cannot reach: one directory per requested path, so each clone keeps its own data, reused
// from one start to the next.
func fallbackDataDir(requested string) string {
	root := "/var/tmp"
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		root = os.TempDir()
	}
	sum := sha256.Sum256([]byte(requested))
	return filepath.Join(root, "enclave-dev", hex.EncodeToString(sum[:6]), "pgdata")
}

func hostPort(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if host == "::" || host == "0.0.0.0" || host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// peerKeyHex is the HMAC key of a whsec_ secret, in hex, for openssl.
func peerKeyHex(secret string) string {
	b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	return hex.EncodeToString(b)
}

// printStory prints the stories as commands to paste one by one into a POSIX shell: each
// sets the shell variables the next one uses, so nothing needs substituting by hand.
func printStory(w io.Writer, us, them string, st devState, sim *kytsim.Server, graceTA string) {
	rerate := "(a real KYT raises it when Chainalysis identifies the address; nothing to do here)"
	if sim != nil {
		rerate = fmt.Sprintf(`curl -s -X PUT %s/_sim/addresses/%s -H 'Token: %s' -d '{"category":"sanctioned entity","cluster":"OFAC SDN Demo Designation"}'; echo`,
			sim.URL, devLaterSanctioned, sim.Token())
	}
	grace, ada := theirBook.Customers[0], ourBook.Customers[0]
	listedFirst, listedLast, _ := strings.Cut(devListed, " ")
	// verification is the body of a verification from one VASP's customer to the other's.
	verification := func(to, symbol, network, amount string, from, ben devCustomer) string {
		asset := `"symbol":"` + symbol + `"`
		if network != "" {
			asset += `,"network":"` + network + `"`
		}
		persons := ""
		if ben.First != "" {
			persons = `"beneficiaryPersons":'"$(who ` + ben.First + " " + ben.Last + `)"',`
		}
		key := "beneficiaryVaspId"
		if strings.HasPrefix(to, "ta") { // a Travel Address: over TRP
			key = "beneficiaryTravelAddress"
		}
		return fmt.Sprintf(`'{"`+key+`":"%s","requiredBeneficiaryInfo":"ACCOUNT_NUMBER,NATURAL_PERSON_NAME","assetInfo":{%s,"amount":"%s"},`+
			`"payload":{"ivms101":{"originator":{"originatorPersons":'"$(who %s %s)"',"accountNumber":["%s"]},"beneficiary":{%s"accountNumber":["%s"]}}}}'`,
			to, asset, amount, from.First, from.Last, from.Wallet, persons, ben.Wallet)
	}
	account := func(c devCustomer) string {
		return fmt.Sprintf(`'{"beneficiaryVaspId":"%s","symbol":"ETH","network":"Ethereum","payload":{"ivms101":{"beneficiary":{"beneficiaryPersons":'"$(who %s %s)"',"accountNumber":["%s"]}}}}'`,
			devCounterparty, c.First, c.Last, c.Wallet)
	}
	fmt.Fprintf(w, `The stories, one command at a time (paste into a shell; each sets what the next uses, and waits where it must).

0. Set up: where each enclave is, each VASP backend's key, and three helpers (waitfor polls a GET, 30 s at most, until its answer holds a text, and prints it).
   US=%[1]s AUTH='Authorization: Bearer %[2]s' THEM=%[3]s THEIRS='Authorization: Bearer %[4]s'
   field() { sed -E 's/.*"'$1'":"([^"]+)".*/\1/'; }; who() { echo '[{"naturalPerson":{"name":[{"nameIdentifier":[{"primaryIdentifier":"'$2'","secondaryIdentifier":"'$1'","nameIdentifierType":"LEGL"}]}]}}]'; }
   waitfor() { for i in $(seq 30); do curl -s "$1" -H "${3:-$AUTH}" | grep -q "$2" && break; sleep 1; done; curl -s "$1" -H "${3:-$AUTH}"; echo; }

Before sending
1. The counterparties we can send to: the demo counterparty shows UP once probed (every 2 s): waits for it.
   waitfor $US/v1/vasps '"health":"UP"'
2. Does the counterparty's VASP know %[5]s's wallet and name? Its Verify Account API answers VERIFIED, in the same call.
   curl -s $US/v1/verifications/account -H "$AUTH" -d %[19]s; echo

We send (role ORIGINATOR)
3. Send 1.5 ETH to %[5]s: the counterparty's VASP answers Verify User. Waits for the result (VERIFIED, her name returned); our VERIFICATION_RESULT is printed here.
   V=$(curl -s $US/v1/verifications -H "$AUTH" -d %[6]s | field verificationUuid); echo $V
   waitfor $US/v1/verifications/$V '"result":"VERIFIED"'
4. Screen the withdrawal ATTEMPT with KYT, the answer in the call (Prefer: wait=10); its callback is printed here too.
   curl -s $US/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -H 'Prefer: wait=10' -d '{"verificationUuid":"'$V'"}'; echo
5. Report the on-chain transaction: the counterparty's VASP gets TX_REPORT, printed here a moment later.
   curl -s $US/v1/verifications/tx -H "$AUTH" -d '{"verificationUuid":"'$V'","txHash":"%[7]s"}'; echo
6. One DENIED: 0.5 ETH to %[8]s, whom the counterparty lists (BLACKLISTED): waits for the result; then Address Screening of the wallet agrees, in the call.
   D=$(curl -s $US/v1/verifications -H "$AUTH" -d %[9]s | field verificationUuid); echo $D
   waitfor $US/v1/verifications/$D '"result":"DENIED"'
   curl -s $US/v1/risk-assessment/chainalysis-address-screening -H "$AUTH" -H 'Prefer: wait=10' -d '{"verificationUuid":"'$D'"}'; echo

They send (we are BENEFICIARY)
7. The counterparty's backend sends %[10]s BTC to %[11]s: our VASP answers Verify User (printed here); waits for the result, then the counterparty's VERIFICATION_RESULT is printed.
   IN=$(curl -s $THEM/v1/verifications -H "$THEIRS" -d %[12]s | field verificationUuid); echo $IN
   waitfor $US/v1/verifications/$IN '"result":"VERIFIED"'
8. Before its tx report a deposit cannot be screened with KYT (400 UNSUPPORTED-RISK-ASSESSMENT).
   curl -s $US/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -d '{"verificationUuid":"'$IN'"}'; echo
9. The counterparty reports its transaction: waits until it reaches us (our TX_REPORT), then screens the deposit, a received TRANSFER (kytsim takes 2 s): its sender is sanctioned, a SEVERE alert.
   curl -s $THEM/v1/verifications/tx -H "$THEIRS" -d '{"verificationUuid":"'$IN'","txHash":"%[13]s"}'; echo
   waitfor $US/v1/verifications/$IN '"txHash":"'
   curl -s $US/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -H 'Prefer: wait=10' -d '{"verificationUuid":"'$IN'"}'; echo

Monitoring (alerts Chainalysis raises later)
10. Send 0.2 ETH to a private wallet (UNKNOWN to the counterparty), report it and screen the TRANSFER, waiting (Prefer: wait=10, about 2 s) until it is PROCESSED without alerts: re-rate the wallet only after that, or the transfer is simply screened SEVERE and no alert comes later.
   C=$(curl -s $US/v1/verifications -H "$AUTH" -d %[14]s | field verificationUuid); echo $C
   waitfor $US/v1/verifications/$C '"result":"UNKNOWN"'
   curl -s $US/v1/verifications/tx -H "$AUTH" -d '{"verificationUuid":"'$C'","txHash":"%[15]s"}'; echo
   curl -s $US/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -H 'Prefer: wait=10' -d '{"verificationUuid":"'$C'"}'; echo
11. Chainalysis identifies that wallet as sanctioned (with kytsim: re-rate it); within --monitor-interval (2 s) a CHAINALYSIS_KYT_ALERT is printed here. Waits for the alert in the list.
   %[16]s
   waitfor "$US/v1/risk-assessment/chainalysis-kyt/alerts?source=MONITORING" '"alertLevel"'

12. Every callback, and every message between the two enclaves.
   curl -s $US/v1/callbacks -H "$AUTH"; echo; curl -s $US/v1/peer-messages -H "$AUTH"; echo

The counterparty goes away
13. Stop the demo counterparty's API (SIGUSR1 to dev, process %[20]d; its workers and ours go on): waits until it shows DOWN (a few seconds); an account check now answers ERROR / REQUEST-TIMEOUT.
   kill -USR1 %[20]d; waitfor $US/v1/vasps '"health":"DOWN"'
   curl -s $US/v1/verifications/account -H "$AUTH" -d %[19]s; echo
14. Start it again (SIGUSR1 once more): waits until it shows UP.
   kill -USR1 %[20]d; waitfor $US/v1/vasps '"health":"UP"'

The counterparty over TRP (OpenVASP's Travel Rule Protocol, as VASPs that do not run this enclave speak it)
15. Send 0.3 ETH to %[5]s by her Travel Address at the counterparty (what `+"`enclave trp address <wallet>`"+` prints there): the inquiry, the decision and the txid travel over TRP. Waits for VERIFIED, reports the tx, waits until its txid is delivered; the counterparty's TX_REPORT is printed here.
   T=$(curl -s $US/v1/verifications -H "$AUTH" -d %[21]s | field verificationUuid); echo $T
   waitfor $US/v1/verifications/$T '"result":"VERIFIED"'
   curl -s $US/v1/verifications/tx -H "$AUTH" -d '{"verificationUuid":"'$T'","txHash":"%[22]s"}'; echo
   waitfor "$US/v1/peer-messages?verificationUuid=$T" '"kind":"TX_REPORT","status":"DELIVERED"'

Raw peer requests: peer() signs one as the counterparty, e.g. peer /peer/v1/verifications/tx '{...}'.
   peer() { ID=msg_$(date +%%s%%N) TS=$(date +%%s); SIG=$(printf '%%s' "$ID.$TS.$2" | openssl dgst -sha256 -mac HMAC -macopt hexkey:%[17]s -binary | base64); curl -s $US$1 -H 'X-Vasp-Id: %[18]s' -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" -d "$2"; echo; }

Ctrl-C here (or kill %[20]d) stops everything, PostgreSQL included.
`, us, st.APIKey, them, st.Counterparty.APIKey,
		grace.name(), verification(devCounterparty, "ETH", "Ethereum", "1.5", devOurSender, grace), devTxHash,
		devListed, verification(devCounterparty, "ETH", "Ethereum", "0.5", devOurSender, devCustomer{listedFirst, listedLast, devSanctioned}),
		devDepositAmount, ada.name(), verification(devVasp, "BTC", "", devDepositAmount, devTheirSender, ada), devDepositTx,
		verification(devCounterparty, "ETH", "Ethereum", "0.2", devOurSender, devCustomer{Wallet: devLaterSanctioned}), devLaterTxHash, rerate,
		peerKeyHex(st.PeerSecret), devCounterparty, account(grace), os.Getpid(),
		verification(graceTA, "ETH", "Ethereum", "0.3", devOurSender, grace), devTRPTxHash)
}

func randomKey() string {
	b := make([]byte, 18)
	rand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
