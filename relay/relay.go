// Package relay is the radio relay workload: a NATS micro service whose
// requests are carried over the radio link to an air-gapped peer, whose
// answers become the NATS replies.
//
// The radio is half-duplex and slow, so the relay never lets NATS callbacks
// block on it: requests are queued per peer (bounded in total) and one worker
// serves the peers round-robin, so a burst for one peer cannot starve another.
// Past the bound a caller gets a "503 busy" error at once instead of a
// timeout much later.
//
// # Answers and statistics
//
// micro delivers the requests of an endpoint one at a time, on the goroutine
// of its subscription, and after each handler returns it reads what the
// handler answered to count the request, its time and its error. A handler
// that held its request until the radio answered would therefore hold every
// later request of the service out of the relay's queue (no fairness between
// peers, no 503 when full, nothing to hand over on shutdown), and one that
// queued the micro.Request and answered it later from the worker races with
// that read and has micro count only what happened before the handler
// returned. So the handler only admits: what it refuses (400, 404, 413, a
// full queue) it answers itself through the micro.Request, which micro
// counts; what it queues keeps only the reply subject, and the worker
// publishes the answer there, with the same error headers micro writes. The
// relay counts every answer itself, from arrival to answer, and reports
// those figures, the queue and the link's per-peer numbers through micro's
// StatsHandler: the endpoint's "data" in $SRV.STATS, shown by nats micro
// info. micro's own columns (nats micro stats) count arrivals and the
// refusals on arrival.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/nexfield/nexfield/chunking"
	"github.com/nexfield/nexfield/exchange"
)

// Peer is an air-gapped station the relay can reach.
type Peer struct {
	Name string
	Addr uint8
}

func (p Peer) String() string { return fmt.Sprintf("%s(%d)", p.Name, p.Addr) }

// Result is what one exchange over the link produced.
type Result struct {
	Reply   []byte
	RSSI    float64 // dBm, of the last frame heard from the peer
	SNR     float64 // dB
	Airtime time.Duration
	Frames  int
	Retries int
}

// Exchanger carries one request to a peer and returns its reply. The link
// layer implements it; errors should wrap one of the classes below so
// callers learn what to do (errorCodes).
type Exchanger interface {
	Exchange(ctx context.Context, to Peer, payload []byte) (Result, error)
}

// Errors an Exchanger reports and the relay maps to service error codes.
// The peer's classes are the link's (package chunking), for the link's
// failures and the peer's error replies alike.
var (
	ErrPeerUnreachable = chunking.ErrUnreachable
	ErrTooLarge        = chunking.ErrTooLarge
	ErrPeerBusy        = chunking.ErrPeerBusy
	ErrRefused         = chunking.ErrRefused
	ErrHandler         = chunking.ErrHandler
	ErrRadio           = errors.New("relay: radio fault")
)

// PeerHeader names the target peer (by name or address) on a request.
const PeerHeader = "Nexfield-Peer"

// Opts configures a Relay. The zero value is a working configuration with
// one peer named "peer" at address 2.
type Opts struct {
	// Name is the micro service name (nats micro ls). Zero: "nexfield-relay".
	Name string
	// Version is the service's semantic version (nats micro info), the
	// build's. Zero: "0.0.0".
	Version string
	// Subject prefixes the subjects the relay serves: PREFIX.sentiment,
	// PREFIX.sentiment.PEER, PREFIX.send, PREFIX.send.PEER. Zero: "field".
	Subject string
	// Address is the relay's own radio address, reported in replies so a
	// caller can tell relay instances apart. Zero: 1.
	Address uint8
	// Peers the relay may address. Zero: one peer "peer" at address 2.
	Peers []Peer
	// DefaultPeer is used when a request names none. Zero: the first of Peers.
	DefaultPeer string
	// QueueDepth bounds the requests waiting for the radio. Zero: 16.
	QueueDepth int
	// Timeout bounds a request from arrival to reply. Zero: 2 minutes.
	Timeout time.Duration
	// MaxMessage rejects larger requests before they reach the link. Zero: 64 KiB.
	MaxMessage int
	// DrainTimeout bounds how long Run keeps serving queued requests after
	// its context ends. Zero: 30 seconds.
	DrainTimeout time.Duration
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
}

// Relay is the service. Create it with New and run it with Run.
type Relay struct {
	nc      *nats.Conn
	link    Exchanger
	opts    Opts
	log     *slog.Logger
	peers   map[string]Peer
	order   []string      // peer names in round-robin order
	ready   chan struct{} // closed once Run serves
	running atomic.Bool
	wake    chan struct{}

	mu      sync.Mutex // guards what follows
	queues  map[string][]*job
	pending int
	next    int // round-robin cursor into order
	// forward: on shutdown another instance took the queue, so a request
	// micro still delivers goes there too; closed: the queue is drained
	// for good, so one is refused. Either way none waits for a worker
	// that has gone.
	forward, closed bool
	answers         answerStats
	links           map[string]*PeerStats // by peer name
}

// job is a queued request. It keeps what the answer needs, never the
// micro.Request, which is micro's again once the handler has returned.
type job struct {
	subject, reply string
	header         nats.Header
	kind           exchange.Kind
	peer           Peer
	body           []byte
	arrived        time.Time
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// semverRE is the expression semver.org suggests, which micro checks
	// Config.Version against.
	semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
)

// ErrInvalidOpts wraps every configuration error New reports.
var ErrInvalidOpts = errors.New("relay: invalid options")

// New validates opts; Run starts serving.
func New(nc *nats.Conn, link Exchanger, opts *Opts) (*Relay, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "nexfield-relay"
	}
	if o.Version == "" {
		o.Version = "0.0.0"
	}
	if o.Subject == "" {
		o.Subject = "field"
	}
	if o.Address == 0 {
		o.Address = 1
	}
	if len(o.Peers) == 0 {
		o.Peers = []Peer{{Name: "peer", Addr: 2}}
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = 16
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = 64 << 10
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if nc == nil || link == nil {
		return nil, fmt.Errorf("%w: a NATS connection and a link are required", ErrInvalidOpts)
	}
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("%w: service name %q: use letters, digits, - and _", ErrInvalidOpts, o.Name)
	}
	if !semverRE.MatchString(o.Version) {
		return nil, fmt.Errorf("%w: version %q is not a semantic version (1.2.3, 1.2.3-rc.1, 1.2.3+4.gabcdef)", ErrInvalidOpts, o.Version)
	}
	for _, tok := range strings.Split(o.Subject, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t*>") {
			return nil, fmt.Errorf("%w: subject prefix %q: use dot-separated tokens without spaces or wildcards", ErrInvalidOpts, o.Subject)
		}
	}
	r := &Relay{nc: nc, link: link, opts: o, log: o.Logger, peers: map[string]Peer{},
		ready: make(chan struct{}), wake: make(chan struct{}, 1),
		queues: map[string][]*job{}, links: map[string]*PeerStats{}}
	addrs := map[uint8]string{}
	for _, p := range o.Peers {
		if !nameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("%w: peer name %q: use letters, digits, - and _", ErrInvalidOpts, p.Name)
		}
		if _, dup := r.peers[p.Name]; dup {
			return nil, fmt.Errorf("%w: peer %q listed twice", ErrInvalidOpts, p.Name)
		}
		if other, dup := addrs[p.Addr]; dup {
			return nil, fmt.Errorf("%w: peers %q and %q share address %d", ErrInvalidOpts, other, p.Name, p.Addr)
		}
		addrs[p.Addr] = p.Name
		r.peers[p.Name] = p
		r.order = append(r.order, p.Name)
		r.links[p.Name] = &PeerStats{Addr: p.Addr}
	}
	if o.DefaultPeer == "" {
		r.opts.DefaultPeer = o.Peers[0].Name
	} else if _, ok := r.peers[o.DefaultPeer]; !ok {
		return nil, fmt.Errorf("%w: default peer %q is not among the peers", ErrInvalidOpts, o.DefaultPeer)
	}
	return r, nil
}

// Ready is closed once Run serves: the relay's endpoint is subscribed and
// the server has confirmed it, so a request sent after Ready finds the
// relay. Service discovery ($SRV.PING, INFO, STATS) never answers before
// the endpoint is subscribed either. Ready is never closed if Run fails
// before serving.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// confirmTimeout bounds the round trip that confirms the subscriptions.
const confirmTimeout = 10 * time.Second

// Run registers the micro service and serves until ctx ends. Then it stops
// taking requests (NATS routes new ones to another relay of the same service,
// which is how a relay moves between agents without failing a request) and
// finishes the queued ones within Opts.DrainTimeout; what is left after that
// is answered with a 503. Run may be called once.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("relay: already running")
	}
	svc, err := micro.AddService(r.nc, micro.Config{
		Name:        r.opts.Name,
		Version:     r.opts.Version,
		Description: "carries requests over the LoRa link to air-gapped peers",
		Metadata:    map[string]string{"peers": r.peerList()},
		// One endpoint for every subject, given here rather than through
		// AddEndpoint: micro subscribes Config.Endpoint before its
		// discovery subjects and AddEndpoint's after them, and the server
		// takes a connection's subscriptions in order, so a PING that
		// finds this relay (another relay handing over its queue, the
		// demo, nats micro ping) finds it serving.
		Endpoint: &micro.EndpointConfig{
			Subject:  r.opts.Subject + ".>",
			Handler:  micro.HandlerFunc(r.handle),
			Metadata: map[string]string{"subjects": fmt.Sprintf("%[1]s.sentiment, %[1]s.sentiment.PEER, %[1]s.send, %[1]s.send.PEER", r.opts.Subject)},
		},
		StatsHandler: func(*micro.Endpoint) any { return r.Stats() },
	})
	if err != nil {
		return fmt.Errorf("relay: add service: %w", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := svc.Stop(); err != nil {
				r.log.Warn("stop service", "err", err)
			}
		})
	}
	defer stop()
	fctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	err = r.nc.FlushWithContext(fctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		stop()
		r.drain()
		return fmt.Errorf("relay: confirm the service's subscriptions with the server: %w", err)
	}
	if err == nil {
		close(r.ready)
		r.log.Info("relay serving", "subject", r.opts.Subject+".>", "peers", r.peerList(), "version", r.opts.Version)
	}
	// Stop taking requests the moment ctx ends, even while an exchange is on
	// the air, so callers are routed elsewhere at once. Requests still queued
	// have not touched the air: if another instance of the service is up (a
	// relay moving to another agent), hand them to it at once instead of
	// making them wait for this one's exchange to end.
	handedOff := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(handedOff)
		stop()
		// A round trip after the unsubscriptions: once it is back the
		// server routes no request here, so none handed over can come
		// back, and when Run returns the relay is gone from the service.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := r.nc.FlushWithContext(fctx); err != nil {
			r.log.Warn("unsubscriptions not confirmed", "err", err)
		}
		cancel()
		if n := r.handOff(); n > 0 {
			r.log.Info("queued requests handed to another relay instance", "requests", n)
		}
	})
	defer stopWatch()
	// An exchange in flight when ctx ends still completes: its own deadline
	// bounds it, and failing it would fail a caller for nothing.
	r.work(context.WithoutCancel(ctx), ctx.Done(), false)
	<-handedOff // work returns only once ctx has ended
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.DrainTimeout)
	defer cancel()
	closed := make(chan struct{})
	close(closed)
	r.work(drainCtx, closed, true)
	r.drain()
	return nil
}

func (r *Relay) peerList() string {
	var s []string
	for _, n := range r.order {
		s = append(s, fmt.Sprintf("%s=%d", n, r.peers[n].Addr))
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}

// Codes of the relay's service errors (Nats-Service-Error-Code).
const (
	codeBadRequest  = "400"
	codeUnknownPeer = "404"
	codeTooLarge    = "413"
	codeRefused     = "422" // the peer will not carry out the request
	codeInternal    = "500"
	codeHandler     = "502" // bad gateway: the peer's handler failed
	codeRadio       = "502"
	codeBusy        = "503"
	codeUnreachable = "504"
)

// errorCodes is the relay's one error table: a failed exchange, or the
// peer's error reply, gets the code of the first class it belongs to.
var errorCodes = []struct {
	class error
	code  string
}{
	{ErrTooLarge, codeTooLarge}, // before ErrRefused: a peer refuses what is too large for it
	{ErrRefused, codeRefused},
	{ErrPeerBusy, codeBusy},
	{context.Canceled, codeBusy},
	{ErrPeerUnreachable, codeUnreachable},
	{context.DeadlineExceeded, codeUnreachable},
	{ErrHandler, codeHandler},
	{ErrRadio, codeRadio},
}

// errorCode is err's service error code, fallback if it has no class.
func errorCode(err error, fallback string) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.class) {
			return c.code
		}
	}
	return fallback
}

// handle admits a request: it refuses it at once, through req so that
// micro counts the refusal, or queues it for the worker (see the package
// documentation for why it does not wait for the answer).
func (r *Relay) handle(req micro.Request) {
	arrived := time.Now()
	j, code, desc := r.admit(req, arrived)
	if j != nil {
		return
	}
	r.count(arrived, code, desc)
	if err := req.Error(code, desc, errorBody(desc)); err != nil {
		r.log.Warn("reply failed", "subject", req.Subject(), "err", err)
	}
}

// admit queues the request (or, once another instance has taken the
// queue, hands it over too) and returns its job, or returns why not.
func (r *Relay) admit(req micro.Request, arrived time.Time) (j *job, code, desc string) {
	kind, name, ok := r.route(req.Subject())
	if !ok {
		return nil, codeUnknownPeer, fmt.Sprintf("no such endpoint %s: the relay serves %[2]s.sentiment[.PEER] and %[2]s.send[.PEER]", req.Subject(), r.opts.Subject)
	}
	if name == "" && req.Headers() != nil {
		name = req.Headers().Get(PeerHeader)
	}
	peer, err := r.lookup(name)
	if err != nil {
		return nil, codeUnknownPeer, err.Error()
	}
	body := req.Data()
	switch {
	case len(body) == 0:
		return nil, codeBadRequest, "empty request"
	case len(body) > r.opts.MaxMessage:
		return nil, codeTooLarge, fmt.Sprintf("request is %d bytes, the link carries at most %d", len(body), r.opts.MaxMessage)
	}
	j = &job{subject: req.Subject(), reply: req.Reply(), header: nats.Header(req.Headers()),
		kind: kind, peer: peer, body: body, arrived: arrived}
	r.mu.Lock()
	switch {
	case r.forward:
		r.mu.Unlock()
		r.handOver([]*job{j})
		return j, "", ""
	case r.closed:
		r.mu.Unlock()
		return nil, codeBusy, "relay shutting down"
	case r.pending >= r.opts.QueueDepth:
		r.mu.Unlock()
		return nil, codeBusy, fmt.Sprintf("busy: %d requests are waiting for the radio", r.opts.QueueDepth)
	}
	r.queues[peer.Name] = append(r.queues[peer.Name], j)
	r.pending++
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return j, "", ""
}

// route splits a subject under the prefix into the kind of request and the
// peer the subject names ("" for none).
func (r *Relay) route(subject string) (kind exchange.Kind, peer string, ok bool) {
	rest, ok := strings.CutPrefix(subject, r.opts.Subject+".")
	if !ok {
		return 0, "", false
	}
	verb, peer, _ := strings.Cut(rest, ".")
	switch verb {
	case "sentiment":
		kind = exchange.KindSentiment
	case "send":
		kind = exchange.KindRaw
	default:
		return 0, "", false
	}
	if strings.Contains(peer, ".") {
		return 0, "", false
	}
	return kind, peer, true
}

func (r *Relay) lookup(name string) (Peer, error) {
	if name == "" {
		return r.peers[r.opts.DefaultPeer], nil
	}
	if p, ok := r.peers[name]; ok {
		return p, nil
	}
	if n, err := strconv.Atoi(name); err == nil {
		for _, p := range r.peers {
			if int(p.Addr) == n {
				return p, nil
			}
		}
	}
	return Peer{}, fmt.Errorf("unknown peer %q (known: %s)", name, r.peerList())
}

// take returns the next job round-robin over peers with waiting requests.
func (r *Relay) take() *job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.takeLocked()
}

// takeAll empties the queue, in the order take would, and sets forward or
// closed (under the same lock, so no request slips in behind).
func (r *Relay) takeAll(forward, closed bool) []*job {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forward = r.forward || forward
	r.closed = r.closed || closed
	var out []*job
	for j := r.takeLocked(); j != nil; j = r.takeLocked() {
		out = append(out, j)
	}
	return out
}

func (r *Relay) takeLocked() *job {
	for i := 0; i < len(r.order); i++ {
		name := r.order[(r.next+i)%len(r.order)]
		if q := r.queues[name]; len(q) > 0 {
			r.queues[name] = q[1:]
			r.pending--
			r.next = (r.next + i + 1) % len(r.order)
			return q[0]
		}
	}
	return nil
}

// work serves queued jobs with ctx until ctx ends or quit is closed: at once
// (untilEmpty false) or once the queue is empty (untilEmpty true).
func (r *Relay) work(ctx context.Context, quit <-chan struct{}, untilEmpty bool) {
	for ctx.Err() == nil {
		if !untilEmpty {
			select {
			case <-quit:
				return
			default:
			}
		}
		j := r.take()
		if j == nil {
			select {
			case <-quit:
				return
			case <-r.wake:
				continue
			}
		}
		r.serve(ctx, j)
	}
}

// drain refuses what is still queued, and from now on what still arrives.
func (r *Relay) drain() {
	for _, j := range r.takeAll(false, true) {
		r.fail(j, codeBusy, "relay shutting down")
	}
}

// Reply is the JSON answer of the relay's endpoints.
type Reply struct {
	Peer      string             `json:"peer"`
	Via       int                `json:"via"` // the answering relay's radio address
	Label     string             `json:"label,omitempty"`
	Scores    map[string]float64 `json:"scores,omitempty"`
	Data      []byte             `json:"data,omitempty"` // send endpoints: the peer's raw answer
	RSSI      float64            `json:"rssi"`
	SNR       float64            `json:"snr"`
	AirtimeMS float64            `json:"airtime_ms"`
	Frames    int                `json:"frames"`
	Retries   int                `json:"retries"`
	LatencyMS float64            `json:"latency_ms"`
}

func (r *Relay) serve(ctx context.Context, j *job) {
	ctx, cancel := context.WithDeadline(ctx, j.arrived.Add(r.opts.Timeout))
	defer cancel()
	res, err := r.link.Exchange(ctx, j.peer, exchange.EncodeRequest(j.kind, j.body))
	latency := time.Since(j.arrived)
	r.countExchange(j.peer, res, err)
	if err != nil {
		r.log.Warn("exchange failed", "peer", j.peer.Name, "kind", j.kind.String(), "err", err)
		r.fail(j, errorCode(err, codeInternal), err.Error())
		return
	}
	body, err := exchange.DecodeReply(res.Reply)
	if err != nil {
		// The peer's error reply has its class; a reply that does not
		// decode came over a faulty link.
		r.fail(j, errorCode(err, codeRadio), err.Error())
		return
	}
	out := Reply{Peer: j.peer.Name, Via: int(r.opts.Address), RSSI: res.RSSI, SNR: res.SNR,
		AirtimeMS: float64(res.Airtime.Microseconds()) / 1000, Frames: res.Frames, Retries: res.Retries,
		LatencyMS: float64(latency.Microseconds()) / 1000}
	switch j.kind {
	case exchange.KindSentiment:
		s, err := exchange.DecodeSentiment(body)
		if err != nil {
			r.fail(j, codeRadio, err.Error())
			return
		}
		out.Label, out.Scores = s.Label, s.Scores
	default:
		out.Data = body
	}
	b, _ := json.Marshal(out)
	r.answer(j, nil, b, "", "")
	r.log.Debug("exchange done", "peer", j.peer.Name, "frames", res.Frames, "airtime_ms", out.AirtimeMS, "latency_ms", out.LatencyMS)
}

// fail answers a queued job with a service error.
func (r *Relay) fail(j *job, code, desc string) {
	r.answer(j, nats.Header{micro.ErrorHeader: {desc}, micro.ErrorCodeHeader: {code}}, errorBody(desc), code, desc)
}

// answer counts a queued job's answer and publishes it to its reply
// subject, as micro.Request's Respond and Error would (their headers, on
// the same connection). Counting first means a caller that has its answer
// finds it in the statistics. A request published without a reply subject
// is served and counted but answered to nobody.
func (r *Relay) answer(j *job, h nats.Header, data []byte, code, desc string) {
	r.count(j.arrived, code, desc)
	if j.reply == "" {
		return
	}
	if err := r.nc.PublishMsg(&nats.Msg{Subject: j.reply, Header: h, Data: data}); err != nil {
		r.log.Warn("reply failed", "subject", j.subject, "err", err)
	}
}

// errorBody is the JSON body of an error answer.
func errorBody(desc string) []byte {
	b, _ := json.Marshal(map[string]string{"error": desc})
	return b
}

// handOff republishes every queued request, with its caller's reply
// subject, to the service subject it came on, if another instance of the
// service answers a ping; requests micro delivers after that follow them.
// It returns how many it handed over.
func (r *Relay) handOff() int {
	if r.queued() == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := r.nc.RequestWithContext(ctx, "$SRV.PING."+r.opts.Name, nil); err != nil {
		return 0 // nobody else: serve them here
	}
	n := r.handOver(r.takeAll(true, false))
	if err := r.nc.FlushWithContext(ctx); err != nil {
		r.log.Warn("handed-over requests not flushed", "err", err)
	}
	return n
}

// handOver republishes jobs to their subjects and counts them.
func (r *Relay) handOver(jobs []*job) int {
	n := 0
	for _, j := range jobs {
		m := &nats.Msg{Subject: j.subject, Reply: j.reply, Data: j.body, Header: j.header}
		if err := r.nc.PublishMsg(m); err != nil {
			r.fail(j, codeBusy, "relay shutting down")
			continue
		}
		n++
	}
	r.mu.Lock()
	r.answers.handedOff += n
	r.mu.Unlock()
	return n
}

// queued reports how many requests wait for the radio.
func (r *Relay) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// Stats are the relay's own figures: the data of its endpoint in
// $SRV.STATS (nats micro info shows them). The first five mirror micro's
// endpoint statistics but count answers, from a request's arrival to its
// answer, the queued and the failed ones included.
type Stats struct {
	// NumRequests counts the requests this relay answered.
	NumRequests int `json:"num_requests"`
	// NumErrors counts those answered with a service error; LastError is
	// the latest, as "CODE:description".
	NumErrors int    `json:"num_errors"`
	LastError string `json:"last_error,omitempty"`
	// ProcessingTime is the sum of arrival-to-answer times, queueing and
	// air included, and AverageProcessingTime its mean (JSON: nanoseconds).
	ProcessingTime        time.Duration `json:"processing_time"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
	// HandedOff counts queued requests handed to another instance on
	// shutdown (answered there, not here).
	HandedOff int `json:"handed_off"`
	// Queued requests wait for the radio now, at most QueueDepth.
	Queued     int `json:"queued"`
	QueueDepth int `json:"queue_depth"`
	// Peers holds each peer's link figures, by name.
	Peers map[string]PeerStats `json:"peers"`
}

// PeerStats are one peer's figures.
type PeerStats struct {
	Addr uint8 `json:"addr"`
	// Queued requests for this peer wait for the radio now.
	Queued int `json:"queued"`
	// Exchanges counts exchanges started over the link, Failed those that
	// ended in an error.
	Exchanges int `json:"exchanges"`
	Failed    int `json:"failed"`
	// AirtimeMS and Retries sum what the link reported for them, failed
	// exchanges included.
	AirtimeMS float64 `json:"airtime_ms"`
	Retries   int     `json:"retries"`
	// LastRSSI and LastSNR are those of the latest answer from the peer.
	LastRSSI float64 `json:"last_rssi_dbm"`
	LastSNR  float64 `json:"last_snr_db"`
}

// answerStats is what count accumulates; guarded by Relay.mu.
type answerStats struct {
	requests, errors, handedOff int
	lastError                   string
	processing                  time.Duration
}

// Stats returns a snapshot of the relay's figures.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.answers
	st := Stats{NumRequests: a.requests, NumErrors: a.errors, LastError: a.lastError,
		ProcessingTime: a.processing, HandedOff: a.handedOff, Queued: r.pending,
		QueueDepth: r.opts.QueueDepth, Peers: make(map[string]PeerStats, len(r.links))}
	if a.requests > 0 {
		st.AverageProcessingTime = a.processing / time.Duration(a.requests)
	}
	for name, p := range r.links {
		ps := *p
		ps.Queued = len(r.queues[name])
		st.Peers[name] = ps
	}
	return st
}

// Status is one line on what the relay is doing, for systemd's STATUS=.
func (r *Relay) Status() string {
	st := r.Stats()
	return fmt.Sprintf("serving %s.> for peers %s: %d answered, %d errors, %d queued",
		r.opts.Subject, r.peerList(), st.NumRequests, st.NumErrors, st.Queued)
}

// count records one answer; code is "" for a success.
func (r *Relay) count(arrived time.Time, code, desc string) {
	d := time.Since(arrived)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers.requests++
	r.answers.processing += d
	if code != "" {
		r.answers.errors++
		r.answers.lastError = code + ":" + desc
	}
}

// countExchange records what one exchange with p cost on the link.
func (r *Relay) countExchange(p Peer, res Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.links[p.Name]
	ps.Exchanges++
	ps.AirtimeMS += float64(res.Airtime.Microseconds()) / 1000
	ps.Retries += res.Retries
	if err != nil {
		ps.Failed++
		return
	}
	ps.LastRSSI, ps.LastSNR = res.RSSI, res.SNR
}
