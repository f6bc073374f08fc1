package chunking

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCCMVectors checks the CCM implementation against RFC 3610 §8 packet
// vectors (13-byte nonce, 8-byte tag: the link's configuration) and the
// NIST SP 800-38C Appendix C examples (other nonce and tag sizes, and the
// 65 536-byte associated data of example 4 that needs the 6-byte length
// encoding).
func TestCCMVectors(t *testing.T) {
	nistAAD4 := make([]byte, 65536)
	for i := range nistAAD4 {
		nistAAD4[i] = byte(i)
	}
	for _, tc := range []struct {
		name                   string
		key, nonce, aad, pt, c string
		bigAAD                 []byte
		tagLen                 int
	}{
		{name: "rfc3610 packet 1", key: "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", nonce: "00000003020100a0a1a2a3a4a5",
			aad: "0001020304050607", pt: "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
			c: "588c979a61c663d2f066d0c2c0f989806d5f6b61dac384 17e8d12cfdf926e0", tagLen: 8},
		{name: "rfc3610 packet 2", key: "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", nonce: "00000004030201a0a1a2a3a4a5",
			aad: "0001020304050607", pt: "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			c: "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3b a091d56e10400916", tagLen: 8},
		{name: "rfc3610 packet 3", key: "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", nonce: "00000005040302a0a1a2a3a4a5",
			aad: "0001020304050607", pt: "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
			c: "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da859657 4adaa76fbd9fb0c5", tagLen: 8},
		{name: "rfc3610 packet 4", key: "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", nonce: "00000006050403a0a1a2a3a4a5",
			aad: "000102030405060708090a0b", pt: "0c0d0e0f101112131415161718191a1b1c1d1e",
			c: "a28c6865939a9a79faaa5c4c2a9d4a91cdac8c 96c861b9c9e61ef1", tagLen: 8},
		{name: "sp800-38c example 1", key: "404142434445464748494a4b4c4d4e4f", nonce: "10111213141516",
			aad: "0001020304050607", pt: "20212223", c: "7162015b 4dac255d", tagLen: 4},
		{name: "sp800-38c example 2", key: "404142434445464748494a4b4c4d4e4f", nonce: "1011121314151617",
			aad: "000102030405060708090a0b0c0d0e0f", pt: "202122232425262728292a2b2c2d2e2f",
			c: "d2a1f0e051ea5f62081a7792073d593d 1fc64fbfaccd", tagLen: 6},
		{name: "sp800-38c example 3", key: "404142434445464748494a4b4c4d4e4f", nonce: "101112131415161718191a1b",
			aad: "000102030405060708090a0b0c0d0e0f10111213", pt: "202122232425262728292a2b2c2d2e2f3031323334353637",
			c: "e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5 484392fbc1b09951", tagLen: 8},
		{name: "sp800-38c example 4", key: "404142434445464748494a4b4c4d4e4f", nonce: "101112131415161718191a1b1c",
			bigAAD: nistAAD4, pt: "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
			c: "69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72 b4ac6bec93e8598e7f0dadbcea5b", tagLen: 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := aes.NewCipher(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			nonce := unhex(t, tc.nonce)
			a, err := newCCM(b, len(nonce), tc.tagLen)
			if err != nil {
				t.Fatal(err)
			}
			aad := tc.bigAAD
			if aad == nil {
				aad = unhex(t, tc.aad)
			}
			pt, want := unhex(t, tc.pt), unhex(t, tc.c)
			got := a.Seal(nil, nonce, pt, aad)
			if !bytes.Equal(got, want) {
				t.Fatalf("seal: got %x, want %x", got, want)
			}
			back, err := a.Open(nil, nonce, got, aad)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("open: got %x, %v, want %x", back, err, pt)
			}
			for i := range got {
				bad := bytes.Clone(got)
				bad[i] ^= 0x01
				if _, err := a.Open(nil, nonce, bad, aad); err == nil {
					t.Fatalf("flipped bit in byte %d accepted", i)
				}
			}
			badAAD := bytes.Clone(aad)
			badAAD[len(badAAD)-1] ^= 0x80
			if _, err := a.Open(nil, nonce, got, badAAD); err == nil {
				t.Fatal("modified associated data accepted")
			}
		})
	}
}

func TestCCMRejectsBadSizes(t *testing.T) {
	b, _ := aes.NewCipher(make([]byte, 16))
	for _, tc := range []struct{ nonce, tag int }{{6, 8}, {14, 8}, {13, 3}, {13, 5}, {13, 18}} {
		if _, err := newCCM(b, tc.nonce, tc.tag); err == nil {
			t.Errorf("nonce %d tag %d: got nil error", tc.nonce, tc.tag)
		}
	}
	a, _ := newCCM(b, 13, 8)
	if _, err := a.Open(nil, make([]byte, 13), make([]byte, 7), nil); err == nil {
		t.Error("short ciphertext accepted")
	}
}
