// Package relay is the radio relay workload: a NATS micro service whose
// requests are carried over the radio link to an air-gapped peer, whose
// answers become the NATS replies.
//
// The radio is half-duplex and slow, so the relay never lets NATS callbacks
// block on it: requests are queued per peer (bounded in total) and one worker
// serves the peers round-robin, so a burst for one peer cannot starve another.
// Past the bound a caller gets a "503 busy" error at once instead of a
// timeout much later.
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
	"sync"
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
	// Version is the service's semantic version. Zero: "0.0.0".
	Version string
	// Subject prefixes the endpoints: PREFIX.sentiment, PREFIX.sentiment.PEER,
	// PREFIX.send, PREFIX.send.PEER. Zero: "field".
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
	nc    *nats.Conn
	link  Exchanger
	opts  Opts
	log   *slog.Logger
	peers map[string]Peer
	order []string // peer names in round-robin order

	mu      sync.Mutex
	queues  map[string][]*job
	pending int
	next    int // round-robin cursor into order
	wake    chan struct{}
}

type job struct {
	req     micro.Request
	kind    exchange.Kind
	peer    Peer
	body    []byte
	arrived time.Time
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

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
	r := &Relay{nc: nc, link: link, opts: o, log: o.Logger, peers: map[string]Peer{},
		queues: map[string][]*job{}, wake: make(chan struct{}, 1)}
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
	}
	if o.DefaultPeer == "" {
		r.opts.DefaultPeer = o.Peers[0].Name
	} else if _, ok := r.peers[o.DefaultPeer]; !ok {
		return nil, fmt.Errorf("%w: default peer %q is not among the peers", ErrInvalidOpts, o.DefaultPeer)
	}
	return r, nil
}

// Run registers the micro service and serves until ctx ends. Then it stops
// taking requests (NATS routes new ones to another relay of the same service,
// which is how a relay moves between agents without failing a request) and
// finishes the queued ones within Opts.DrainTimeout; what is left after that
// is answered with a 503.
func (r *Relay) Run(ctx context.Context) error {
	svc, err := micro.AddService(r.nc, micro.Config{
		Name:        r.opts.Name,
		Version:     r.opts.Version,
		Description: "carries requests over the LoRa link to air-gapped peers",
		Metadata:    map[string]string{"peers": r.peerList()},
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
	// Stop taking requests the moment ctx ends, even while an exchange is on
	// the air, so callers are routed elsewhere at once. Requests still queued
	// have not touched the air: if another instance of the service is up (a
	// relay moving to another agent), hand them to it at once instead of
	// making them wait for this one's exchange to end.
	handedOff := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(handedOff)
		stop()
		if n := r.handOff(); n > 0 {
			r.log.Info("queued requests handed to another relay instance", "requests", n)
		}
	})
	defer stopWatch()
	g := svc.AddGroup(r.opts.Subject)
	for _, ep := range []struct {
		name, subject string
		kind          exchange.Kind
		bySubject     bool
	}{
		{"sentiment", "sentiment", exchange.KindSentiment, false},
		{"sentiment-to", "sentiment.*", exchange.KindSentiment, true},
		{"send", "send", exchange.KindRaw, false},
		{"send-to", "send.*", exchange.KindRaw, true},
	} {
		ep := ep
		h := micro.HandlerFunc(func(req micro.Request) { r.enqueue(req, ep.kind, ep.bySubject) })
		if err := g.AddEndpoint(ep.name, h, micro.WithEndpointSubject(ep.subject)); err != nil {
			return fmt.Errorf("relay: add endpoint %s: %w", ep.name, err)
		}
	}
	r.log.Info("relay serving", "subject", r.opts.Subject+".>", "peers", r.peerList())
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

func (r *Relay) enqueue(req micro.Request, kind exchange.Kind, bySubject bool) {
	name := ""
	if bySubject {
		subj := req.Subject()
		for i := len(subj) - 1; i >= 0; i-- {
			if subj[i] == '.' {
				name = subj[i+1:]
				break
			}
		}
	} else if h := req.Headers(); h != nil {
		name = nats.Header(h).Get(PeerHeader)
	}
	peer, err := r.lookup(name)
	if err != nil {
		respondError(req, codeUnknownPeer, err.Error())
		return
	}
	body := req.Data()
	switch {
	case len(body) == 0:
		respondError(req, codeBadRequest, "empty request")
		return
	case len(body) > r.opts.MaxMessage:
		respondError(req, codeTooLarge, fmt.Sprintf("request is %d bytes, the link carries at most %d", len(body), r.opts.MaxMessage))
		return
	}
	j := &job{req: req, kind: kind, peer: peer, body: body, arrived: time.Now()}
	r.mu.Lock()
	if r.pending >= r.opts.QueueDepth {
		r.mu.Unlock()
		respondError(req, codeBusy, fmt.Sprintf("busy: %d requests are waiting for the radio", r.opts.QueueDepth))
		return
	}
	r.queues[peer.Name] = append(r.queues[peer.Name], j)
	r.pending++
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
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

func (r *Relay) drain() {
	for j := r.take(); j != nil; j = r.take() {
		respondError(j.req, codeBusy, "relay shutting down")
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
	if err != nil {
		r.log.Warn("exchange failed", "peer", j.peer.Name, "kind", j.kind.String(), "err", err)
		respondError(j.req, errorCode(err, codeInternal), err.Error())
		return
	}
	body, err := exchange.DecodeReply(res.Reply)
	if err != nil {
		// The peer's error reply has its class; a reply that does not
		// decode came over a faulty link.
		respondError(j.req, errorCode(err, codeRadio), err.Error())
		return
	}
	out := Reply{Peer: j.peer.Name, Via: int(r.opts.Address), RSSI: res.RSSI, SNR: res.SNR,
		AirtimeMS: float64(res.Airtime.Microseconds()) / 1000, Frames: res.Frames, Retries: res.Retries,
		LatencyMS: float64(latency.Microseconds()) / 1000}
	switch j.kind {
	case exchange.KindSentiment:
		s, err := exchange.DecodeSentiment(body)
		if err != nil {
			respondError(j.req, codeRadio, err.Error())
			return
		}
		out.Label, out.Scores = s.Label, s.Scores
	default:
		out.Data = body
	}
	b, _ := json.Marshal(out)
	if err := j.req.Respond(b); err != nil {
		r.log.Warn("respond failed", "err", err)
	}
	r.log.Debug("exchange done", "peer", j.peer.Name, "frames", res.Frames, "airtime_ms", out.AirtimeMS, "latency_ms", out.LatencyMS)
}

func respondError(req micro.Request, code, desc string) {
	body, _ := json.Marshal(map[string]string{"error": desc})
	_ = req.Error(code, desc, body)
}

// handOff republishes every queued request, with its caller's reply
// subject, to the service subject it came on, if another instance of the
// service answers a ping. It returns how many it handed over.
func (r *Relay) handOff() int {
	if r.queued() == 0 {
		return 0
	}
	if _, err := r.nc.Request("$SRV.PING."+r.opts.Name, nil, time.Second); err != nil {
		return 0 // nobody else: serve them here
	}
	n := 0
	for j := r.take(); j != nil; j = r.take() {
		m := &nats.Msg{Subject: j.req.Subject(), Reply: j.req.Reply(), Data: j.body, Header: nats.Header(j.req.Headers())}
		if err := r.nc.PublishMsg(m); err != nil {
			respondError(j.req, codeBusy, "relay shutting down")
			continue
		}
		n++
	}
	_ = r.nc.Flush()
	return n
}

// queued reports how many requests wait for the radio.
func (r *Relay) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}
