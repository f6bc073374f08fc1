package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/nexfield/nexfield/radio"
	"github.com/nexfield/nexfield/radio/lora"
)

// Datagrams between radios and the hub start with a two-byte magic and a
// type byte, so stray traffic on the port is ignored.
const (
	magic0, magic1 = 'n', 'x'

	msgJoin    = 'J' // radio → hub: name
	msgWelcome = 'W' // hub → radio: modulation settings
	msgFrame   = 'F' // radio → hub: payload on the air
	msgRecv    = 'R' // hub → radio: rssi, snr (int16 tenths), payload
	msgBusy    = 'B' // hub → radio: another radio transmits for N µs
	msgLeave   = 'L' // radio → hub

	maxName = 64
)

type datagram struct {
	typ      byte
	name     string
	params   lora.Params
	payload  []byte
	rssi     float64
	snr      float64
	duration time.Duration
}

var errDatagram = errors.New("sim: malformed datagram")

func encodeDatagram(d datagram) []byte {
	b := []byte{magic0, magic1, d.typ}
	switch d.typ {
	case msgJoin:
		b = append(b, d.name...)
	case msgWelcome:
		p := d.params.Resolved()
		var flags byte
		if p.ImplicitHeader {
			flags |= 1
		}
		if p.NoCRC {
			flags |= 2
		}
		b = append(b, byte(p.SpreadingFactor))
		b = binary.BigEndian.AppendUint32(b, uint32(p.BandwidthHz))
		b = append(b, byte(p.CodingRate))
		b = binary.BigEndian.AppendUint16(b, uint16(p.PreambleSymbols))
		b = append(b, flags, byte(p.LDRO))
	case msgFrame:
		b = append(b, d.payload...)
	case msgRecv:
		b = binary.BigEndian.AppendUint16(b, uint16(int16(math.Round(d.rssi*10))))
		b = binary.BigEndian.AppendUint16(b, uint16(int16(math.Round(d.snr*10))))
		b = append(b, d.payload...)
	case msgBusy:
		b = binary.BigEndian.AppendUint32(b, uint32(d.duration/time.Microsecond))
	}
	return b
}

// decodeDatagram parses one datagram; it never keeps a reference to b.
func decodeDatagram(b []byte) (datagram, error) {
	if len(b) < 3 || b[0] != magic0 || b[1] != magic1 {
		return datagram{}, fmt.Errorf("%w: bad magic", errDatagram)
	}
	d := datagram{typ: b[2]}
	body := b[3:]
	switch d.typ {
	case msgJoin:
		if len(body) > maxName {
			return d, fmt.Errorf("%w: name of %d bytes", errDatagram, len(body))
		}
		d.name = string(body)
	case msgWelcome:
		if len(body) != 10 {
			return d, fmt.Errorf("%w: welcome of %d bytes", errDatagram, len(body))
		}
		d.params = lora.Params{
			SpreadingFactor: int(body[0]),
			BandwidthHz:     int(binary.BigEndian.Uint32(body[1:5])),
			CodingRate:      int(body[5]),
			PreambleSymbols: int(binary.BigEndian.Uint16(body[6:8])),
			ImplicitHeader:  body[8]&1 != 0,
			NoCRC:           body[8]&2 != 0,
			LDRO:            lora.LDRO(body[9]),
		}
		if err := d.params.Validate(); err != nil {
			return d, fmt.Errorf("%w: %w", errDatagram, err)
		}
	case msgFrame:
		if len(body) > lora.MaxFrame {
			return d, fmt.Errorf("%w: frame of %d bytes", errDatagram, len(body))
		}
		d.payload = append([]byte{}, body...)
	case msgRecv:
		if len(body) < 4 || len(body)-4 > lora.MaxFrame {
			return d, fmt.Errorf("%w: received frame of %d bytes", errDatagram, len(body))
		}
		d.rssi = float64(int16(binary.BigEndian.Uint16(body[0:2]))) / 10
		d.snr = float64(int16(binary.BigEndian.Uint16(body[2:4]))) / 10
		d.payload = append([]byte{}, body[4:]...)
	case msgBusy:
		if len(body) != 4 {
			return d, fmt.Errorf("%w: busy of %d bytes", errDatagram, len(body))
		}
		d.duration = time.Duration(binary.BigEndian.Uint32(body)) * time.Microsecond
	case msgLeave:
		if len(body) != 0 {
			return d, fmt.Errorf("%w: leave with a body", errDatagram)
		}
	default:
		return d, fmt.Errorf("%w: unknown type %q", errDatagram, d.typ)
	}
	return d, nil
}

// HubOpts configures a Hub.
type HubOpts struct {
	Opts
	// RSSI and SNR are reported on forwarded frames (0 means -90 dBm, 7 dB).
	RSSI, SNR float64
	// Logger receives join/leave events and malformed datagrams (nil: discard).
	Logger *slog.Logger
}

// Hub is the air shared by processes over loopback UDP. Radios made by
// DialUDP join it; it applies the channel model (collisions, half-duplex,
// loss...) on real time and forwards surviving frames.
type Hub struct {
	conn   *net.UDPConn
	log    *slog.Logger
	params lora.Params
	rssi   float64
	snr    float64

	mu    sync.Mutex
	air   *air
	peers map[netip.AddrPort]*station
	addrs map[*station]netip.AddrPort

	done chan struct{}
	wg   sync.WaitGroup
}

// ListenHub opens the hub on addr (e.g. "127.0.0.1:0") and serves until ctx
// ends or Close is called.
func ListenHub(ctx context.Context, addr string, opts *HubOpts) (*Hub, error) {
	var ho HubOpts
	if opts != nil {
		ho = *opts
	}
	o, err := ho.Opts.resolve()
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: hub address: %w", err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("sim: hub: %w", err)
	}
	if ho.RSSI == 0 {
		ho.RSSI = -90
	}
	if ho.SNR == 0 {
		ho.SNR = 7
	}
	log := ho.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		conn: conn, log: log, params: o.Params, rssi: ho.RSSI, snr: ho.SNR,
		air: newAir(o.Params, o.Channel, o.Seed), peers: map[netip.AddrPort]*station{},
		addrs: map[*station]netip.AddrPort{}, done: make(chan struct{}),
	}
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		select {
		case <-ctx.Done():
		case <-h.done:
		}
		conn.Close()
	}()
	go func() {
		defer h.wg.Done()
		h.serve()
	}()
	return h, nil
}

// Addr is the hub's UDP address, for DialUDP.
func (h *Hub) Addr() string { return h.conn.LocalAddr().String() }

func (h *Hub) String() string { return "sim.Hub{" + h.Addr() + "}" }

// Close stops the hub and waits for its goroutines. It is idempotent.
func (h *Hub) Close() error {
	h.mu.Lock()
	select {
	case <-h.done:
	default:
		close(h.done)
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

// Stats returns the counters of the radio joined as name.
func (h *Hub) Stats(name string) (Stats, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.addrs {
		if s.name == name {
			return s.stats, true
		}
	}
	return Stats{}, false
}

func (h *Hub) serve() {
	buf := make([]byte, 1024)
	for {
		n, from, err := h.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		d, err := decodeDatagram(buf[:n])
		if err != nil {
			h.log.Debug("datagram dropped", "from", from.String(), "err", err)
			continue
		}
		h.handle(from, d)
	}
}

func (h *Hub) handle(from netip.AddrPort, d datagram) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.peers[from]
	switch d.typ {
	case msgJoin:
		if st == nil {
			st = h.air.addStation(d.name)
			h.peers[from] = st
			h.addrs[st] = from
			h.log.Info("radio joined", "name", d.name, "addr", from.String())
		}
		h.send(from, datagram{typ: msgWelcome, params: h.params})
	case msgLeave:
		if st != nil {
			h.air.removeStation(st)
			delete(h.peers, from)
			delete(h.addrs, st)
			h.log.Info("radio left", "name", st.name)
		}
	case msgFrame:
		if st == nil {
			return
		}
		now := time.Now()
		if st.txUntil.After(now) {
			h.log.Debug("frame while transmitting dropped", "name", st.name)
			return
		}
		tx := h.air.startTx(st, d.payload, now)
		toa := tx.end.Sub(tx.start)
		for s, a := range h.addrs {
			if s != st {
				h.send(a, datagram{typ: msgBusy, duration: toa})
			}
		}
		time.AfterFunc(toa, func() { h.finish(tx) })
	}
}

func (h *Hub) finish(tx *transmission) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.air.endTx(tx) {
		a, ok := h.addrs[d.to]
		if !ok {
			continue
		}
		d.to.stats.Received++
		msg := datagram{typ: msgRecv, payload: d.payload, rssi: h.rssi, snr: h.snr}
		if d.delay == 0 {
			h.send(a, msg)
			continue
		}
		time.AfterFunc(d.delay, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.send(a, msg)
		})
	}
}

func (h *Hub) send(to netip.AddrPort, d datagram) {
	select {
	case <-h.done:
		return
	default:
	}
	if _, err := h.conn.WriteToUDPAddrPort(encodeDatagram(d), to); err != nil {
		h.log.Debug("hub write failed", "to", to.String(), "err", err)
	}
}

// DialUDP joins the hub at hubAddr and returns a radio on it, with the
// hub's modulation settings. It retries the join until ctx ends.
func DialUDP(ctx context.Context, hubAddr string, opts *RadioOpts) (*Radio, error) {
	var ro RadioOpts
	if opts != nil {
		ro = *opts
	}
	if len(ro.Name) > maxName {
		return nil, fmt.Errorf("%w: radio name longer than %d bytes", ErrInvalidOpts, maxName)
	}
	if ro.Name == "" {
		ro.Name = "node"
	}
	hub, err := net.ResolveUDPAddr("udp", hubAddr)
	if err != nil {
		return nil, fmt.Errorf("sim: hub address: %w", err)
	}
	local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if hub.IP != nil && hub.IP.To4() == nil {
		local = &net.UDPAddr{IP: net.IPv6loopback}
	}
	conn, err := net.DialUDP("udp", local, hub)
	if err != nil {
		return nil, fmt.Errorf("sim: dial hub: %w", err)
	}
	params, err := join(ctx, conn, ro.Name)
	if err != nil {
		conn.Close()
		return nil, err
	}
	r, err := newRadio(params, &ro)
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := &udpPort{conn: conn, r: r, params: params, readerDone: make(chan struct{})}
	r.port = p
	go p.read()
	return r, nil
}

func join(ctx context.Context, conn *net.UDPConn, name string) (lora.Params, error) {
	buf := make([]byte, 1024)
	var last error
	for {
		// Until the hub listens, writes and reads fail with "connection
		// refused": keep trying until ctx ends.
		if _, err := conn.Write(encodeDatagram(datagram{typ: msgJoin, name: name})); err != nil {
			last = err
		}
		deadline := time.Now().Add(200 * time.Millisecond)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetReadDeadline(deadline)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					last = err
					t := time.NewTimer(time.Until(deadline))
					select {
					case <-ctx.Done():
					case <-t.C:
					}
					t.Stop()
				}
				break
			}
			if d, err := decodeDatagram(buf[:n]); err == nil && d.typ == msgWelcome {
				conn.SetReadDeadline(time.Time{})
				return d.params, nil
			}
		}
		if err := ctx.Err(); err != nil {
			if last != nil {
				return lora.Params{}, fmt.Errorf("sim: join hub %v: %w (last error: %v)", conn.RemoteAddr(), err, last)
			}
			return lora.Params{}, fmt.Errorf("sim: join hub %v: %w", conn.RemoteAddr(), err)
		}
	}
}

type udpPort struct {
	conn       *net.UDPConn
	r          *Radio
	params     lora.Params
	readerDone chan struct{}

	mu        sync.Mutex
	busyUntil time.Time
	st        Stats
}

func (p *udpPort) transmit(payload []byte) (time.Duration, error) {
	toa := p.params.TimeOnAir(len(payload))
	if _, err := p.conn.Write(encodeDatagram(datagram{typ: msgFrame, payload: payload})); err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.st.TxFrames++
	p.st.TxAirtime += toa
	p.mu.Unlock()
	return toa, nil
}

func (p *udpPort) read() {
	defer close(p.readerDone)
	buf := make([]byte, 1024)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP port unreachable while the hub restarts: keep listening.
			continue
		}
		d, err := decodeDatagram(buf[:n])
		if err != nil {
			continue
		}
		switch d.typ {
		case msgRecv:
			ok := p.r.push(radio.Frame{Payload: d.payload, RSSI: d.rssi, SNR: d.snr, Time: time.Now()})
			p.mu.Lock()
			if ok {
				p.st.Received++
			} else {
				p.st.Overflow++
			}
			p.mu.Unlock()
		case msgBusy:
			p.mu.Lock()
			if u := time.Now().Add(d.duration); u.After(p.busyUntil) {
				p.busyUntil = u
			}
			p.mu.Unlock()
		}
	}
}

func (p *udpPort) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busyUntil.After(time.Now())
}

func (p *udpPort) stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *udpPort) close() error {
	p.conn.Write(encodeDatagram(datagram{typ: msgLeave}))
	err := p.conn.Close()
	<-p.readerDone
	return err
}
