package dns

import (
	"context"
	"errors"
	"fmt"
	"time"

	mdns "github.com/miekg/dns"
)

// tsigFudge is the clock skew (seconds) the server tolerates on a signed
// update, the value nsupdate and BIND use.
const tsigFudge = 300

// udpSize is the EDNS0 buffer size advertised on queries: large enough for
// a few addresses, small enough to avoid IP fragmentation.
const udpSize = 1232

// exchange sends a message over UDP and, when the answer comes back
// truncated, again over TCP. build makes a fresh message per attempt
// because signing consumes the TSIG placeholder of the message it signs.
//
// A non-nil response is returned even with an error when the server did
// answer (the error is then a failed signature check of the response):
// callers look at the response code first.
func (cn *conn) exchange(ctx context.Context, build func() *mdns.Msg) (*mdns.Msg, error) {
	r, err := cn.exchangeOn(ctx, cn.udp, build())
	if r != nil && r.Truncated {
		r, err = cn.exchangeOn(ctx, cn.tcp, build())
	}
	return r, err
}

func (cn *conn) exchangeOn(ctx context.Context, c *mdns.Client, m *mdns.Msg) (*mdns.Msg, error) {
	r, _, err := c.ExchangeContext(ctx, m, cn.cfg.server)
	if r == nil || r.Id != m.Id || !r.Response {
		if err == nil {
			err = errors.New("no valid response")
		}
		return nil, fmt.Errorf("%s %s: %w", c.Net, cn.cfg.server, err)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", c.Net, cn.cfg.server, err)
	}
	return r, err
}

// update sends one signed RFC 2136 UPDATE for the zone made of the
// changes fill adds, and maps the answer to retryable or permanent errors.
func (cn *conn) update(ctx context.Context, fill func(m *mdns.Msg)) error {
	r, err := cn.exchange(ctx, func() *mdns.Msg {
		m := new(mdns.Msg)
		m.SetUpdate(cn.cfg.zone)
		fill(m)
		m.SetTsig(cn.cfg.keyName, cn.cfg.algorithm, tsigFudge, time.Now().Unix())
		return m
	})
	if r == nil {
		return err // no answer: network trouble, retryable
	}
	if rerr := responseError(r); rerr != nil {
		return rerr
	}
	if err != nil {
		// The server said NOERROR but the answer's signature does not
		// verify: the change cannot be trusted to be applied. Retrying is
		// safe, since every update is idempotent.
		return fmt.Errorf("verify signed response: %w", err)
	}
	return nil
}

// query asks the server one question without signing it.
func (cn *conn) query(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	r, err := cn.exchange(ctx, func() *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		m.RecursionDesired = false
		m.SetEdns0(udpSize, false)
		return m
	})
	if r == nil {
		return nil, err
	}
	return r, nil
}

// rcodeError is a response code other than NOERROR, with the TSIG error
// when the server reported one (BADSIG, BADKEY, …).
type rcodeError struct {
	rcode     int
	tsigError uint16
}

func (e *rcodeError) Error() string {
	s := rcodeName(e.rcode)
	if e.tsigError != 0 {
		s += " (TSIG " + rcodeName(int(e.tsigError)) + ")"
	}
	return s
}

// permanent says whether resending the same update can ever succeed: a
// rejected key, a refused or unknown zone, a malformed or unsupported
// request need an operator. BADTIME (clock skew) is not permanent: it
// clears when the clocks are synchronised, without any change here.
func (e *rcodeError) permanent() bool {
	switch e.tsigError {
	case mdns.RcodeBadSig, mdns.RcodeBadKey, mdns.RcodeBadAlg:
		return true
	case mdns.RcodeBadTime:
		return false
	}
	switch e.rcode {
	case mdns.RcodeNotAuth, mdns.RcodeRefused, mdns.RcodeNotZone, mdns.RcodeFormatError, mdns.RcodeNotImplemented:
		return true
	}
	return false
}

func rcodeName(rc int) string {
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// responseError is nil for NOERROR and an *rcodeError otherwise.
func responseError(r *mdns.Msg) error {
	e := &rcodeError{rcode: r.Rcode}
	if t := r.IsTsig(); t != nil {
		e.tsigError = t.Error
	}
	if e.rcode == mdns.RcodeSuccess && e.tsigError == 0 {
		return nil
	}
	return e
}
