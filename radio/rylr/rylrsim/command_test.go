package rylrsim

import (
	"strconv"
	"strings"
	"testing"
)

func FuzzNextCommand(f *testing.F) {
	for _, s := range []string{
		"AT\r\n", "AT+SEND=0,5,hello\r\n", "AT+SEND=0,6,a\r\n\x00bc\r\n", "AT+SEND=0,3,ab\r\n",
		"AT+SEND=1,99999999999999999999,x\r\n", "AT+SEND=,,\r\n", "AT\n", "\r\n", "AT+SEND=0,-1,\r\n",
		"AT+PARAMETER=9,7,1,12\r\nAT+VER?\r\n",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, binarySafe bool) {
		m := &Module{o: Opts{BinarySafe: binarySafe}}
		for steps := 0; len(b) > 0; steps++ {
			c, k, ok := m.nextCommand(b)
			if !ok {
				if k != 0 {
					t.Fatalf("consumed %d without a command", k)
				}
				return
			}
			if k <= 0 || k > len(b) {
				t.Fatalf("consumed %d of %d", k, len(b))
			}
			if binarySafe && c.err == 0 && c.hasData && strings.HasPrefix(c.text, "AT+SEND=") {
				parts := strings.Split(strings.TrimPrefix(c.text, "AT+SEND="), ",")
				if n, err := strconv.Atoi(parts[len(parts)-1]); err == nil && n >= 0 && n <= 240 && n != len(c.data) {
					t.Fatalf("declared %d, took %d data bytes from %q", n, len(c.data), b[:k])
				}
			}
			b = b[k:]
		}
	})
}
