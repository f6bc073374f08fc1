package chunking

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// ccm is AES-CCM (RFC 3610, NIST SP 800-38C) over any 128-bit block cipher.
// The standard library has no CCM and its GCM refuses tags shorter than 12
// bytes; on LoRa every byte of tag costs airtime on every frame, so the link
// uses CCM with an 8-byte tag, the LoRaWAN-style trade-off (see README).
type ccm struct {
	b        cipher.Block
	nonceLen int // 7..13; the length field takes the other 15-nonceLen bytes
	tagLen   int // 4..16, even
}

var errOpen = errors.New("chunking: message authentication failed")

// newCCM returns a CCM AEAD with the given nonce and tag sizes.
func newCCM(b cipher.Block, nonceLen, tagLen int) (cipher.AEAD, error) {
	if b.BlockSize() != 16 {
		return nil, errors.New("chunking: ccm needs a 128-bit block cipher")
	}
	if nonceLen < 7 || nonceLen > 13 {
		return nil, errors.New("chunking: ccm nonce must be 7..13 bytes")
	}
	if tagLen < 4 || tagLen > 16 || tagLen%2 != 0 {
		return nil, errors.New("chunking: ccm tag must be 4..16 bytes, even")
	}
	return &ccm{b: b, nonceLen: nonceLen, tagLen: tagLen}, nil
}

func (c *ccm) NonceSize() int { return c.nonceLen }
func (c *ccm) Overhead() int  { return c.tagLen }

// maxLen is the longest plaintext the length field can express.
func (c *ccm) maxLen() uint64 {
	q := 15 - c.nonceLen
	if q >= 8 {
		return 1<<63 - 1
	}
	return 1<<(8*q) - 1
}

// mac computes the CBC-MAC of B0 || encoded AAD || plaintext (RFC 3610 §2.2).
func (c *ccm) mac(nonce, aad, plaintext []byte) [16]byte {
	var x, blk [16]byte
	q := 15 - c.nonceLen
	flags := byte((c.tagLen-2)/2) << 3
	flags |= byte(q - 1)
	if len(aad) > 0 {
		flags |= 0x40
	}
	blk[0] = flags
	copy(blk[1:], nonce)
	n := uint64(len(plaintext))
	for i := 15; i > c.nonceLen; i-- {
		blk[i] = byte(n)
		n >>= 8
	}
	c.b.Encrypt(x[:], blk[:])
	if len(aad) > 0 {
		// Length encoding of the associated data, then the data, padded
		// with zeros to a block boundary.
		var hdr []byte
		switch la := uint64(len(aad)); {
		case la < 1<<16-1<<8:
			hdr = binary.BigEndian.AppendUint16(nil, uint16(la))
		case la <= 1<<32-1:
			hdr = binary.BigEndian.AppendUint32([]byte{0xff, 0xfe}, uint32(la))
		default:
			hdr = binary.BigEndian.AppendUint64([]byte{0xff, 0xff}, la)
		}
		c.cbc(&x, hdr, aad)
	}
	c.cbc(&x, nil, plaintext)
	return x
}

// cbc folds prefix||data, zero-padded to whole blocks, into the chain x.
func (c *ccm) cbc(x *[16]byte, prefix, data []byte) {
	var blk [16]byte
	n := copy(blk[:], prefix)
	for len(data) > 0 || n > 0 {
		m := copy(blk[n:], data)
		data = data[m:]
		n += m
		if n < 16 && len(data) > 0 {
			continue
		}
		for i := n; i < 16; i++ {
			blk[i] = 0
		}
		subtle.XORBytes(x[:], x[:], blk[:])
		c.b.Encrypt(x[:], x[:])
		n = 0
	}
}

// ctr XORs src with the keystream A1, A2, ... into dst and returns S0 = E(A0).
func (c *ccm) ctr(dst, src, nonce []byte) [16]byte {
	var a, s, s0 [16]byte
	a[0] = byte(15 - c.nonceLen - 1)
	copy(a[1:], nonce)
	c.b.Encrypt(s0[:], a[:])
	for i := uint64(1); len(src) > 0; i++ {
		v := i
		for j := 15; j > c.nonceLen; j-- {
			a[j] = byte(v)
			v >>= 8
		}
		c.b.Encrypt(s[:], a[:])
		n := subtle.XORBytes(dst, src, s[:])
		dst, src = dst[n:], src[n:]
	}
	return s0
}

func (c *ccm) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != c.nonceLen {
		panic("chunking: ccm: wrong nonce length")
	}
	if uint64(len(plaintext)) > c.maxLen() {
		panic("chunking: ccm: plaintext too long")
	}
	t := c.mac(nonce, aad, plaintext)
	ret, out := sliceForAppend(dst, len(plaintext)+c.tagLen)
	s0 := c.ctr(out, plaintext, nonce)
	subtle.XORBytes(out[len(plaintext):], t[:c.tagLen], s0[:c.tagLen])
	return ret
}

func (c *ccm) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != c.nonceLen {
		panic("chunking: ccm: wrong nonce length")
	}
	if len(ciphertext) < c.tagLen || uint64(len(ciphertext)-c.tagLen) > c.maxLen() {
		return nil, errOpen
	}
	n := len(ciphertext) - c.tagLen
	ret, out := sliceForAppend(dst, n)
	s0 := c.ctr(out, ciphertext[:n], nonce)
	t := c.mac(nonce, aad, out)
	var want [16]byte
	subtle.XORBytes(want[:c.tagLen], ciphertext[n:], s0[:c.tagLen])
	if subtle.ConstantTimeCompare(want[:c.tagLen], t[:c.tagLen]) != 1 {
		clear(out)
		return nil, errOpen
	}
	return ret, nil
}

// sliceForAppend extends in by n bytes, reallocating if needed, and returns
// the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
