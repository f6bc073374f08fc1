package linkbench

import (
	"fmt"
	"html"
	"io"
	"slices"
	"sort"
	"strings"
)

// palette gives each scheme a colour that stays readable in print.
var palette = [...]string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// WriteSVG plots goodput ratio against mean frame loss, one panel per
// message size and one line per scheme over the i.i.d. channels; other
// channels (the bursty one) are drawn as hollow markers at their mean loss.
func WriteSVG(w io.Writer, title string, cells []Cell) error {
	var sizes []int
	var schemes []string
	maxLoss := 0.0
	for _, c := range cells {
		if !slices.Contains(sizes, c.Size) {
			sizes = append(sizes, c.Size)
		}
		if !slices.Contains(schemes, c.Scheme) {
			schemes = append(schemes, c.Scheme)
		}
		maxLoss = max(maxLoss, c.Loss)
	}
	sort.Ints(sizes)
	xmax := 0.1 * float64(int(maxLoss*10+0.999))
	if xmax < 0.1 {
		xmax = 0.1
	}
	const (
		pw, ph         = 420.0, 320.0 // plot area of a panel
		ml, mr, mt, mb = 70.0, 30.0, 60.0, 60.0
		legendH        = 50.0
	)
	width := float64(len(sizes))*(ml+pw+mr) + 10
	height := mt + ph + mb + legendH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n", width/2, html.EscapeString(title))
	for pi, size := range sizes {
		x0 := float64(pi)*(ml+pw+mr) + ml
		y0 := mt
		px := func(loss float64) float64 { return x0 + loss/xmax*pw }
		py := func(g float64) float64 { return y0 + (1-g)*ph }
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s message</text>`+"\n", x0+pw/2, y0-10, sizeLabel(size))
		// Grid and axes.
		for g := 0.0; g <= 1.0001; g += 0.1 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, py(g), x0+pw, py(g))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%.1f</text>`+"\n", x0-6, py(g)+4, g)
		}
		for l := 0.0; l <= xmax+1e-9; l += 0.05 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", px(l), y0, px(l), y0+ph)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f%%</text>`+"\n", px(l), y0+ph+18, l*100)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", x0, y0, pw, ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">mean frame loss</text>`+"\n", x0+pw/2, y0+ph+40)
		fmt.Fprintf(&b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">goodput ÷ PHY limit</text>`+"\n", x0-45, y0+ph/2)
		// Erasure-channel ceiling: every byte of every frame is payload and
		// only lost frames are resent.
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", px(0), py(1), px(xmax), py(1-xmax))
		for si, s := range schemes {
			col := palette[si%len(palette)]
			var pts []Cell
			for _, c := range cells {
				if c.Size == size && c.Scheme == s {
					pts = append(pts, c)
				}
			}
			sort.Slice(pts, func(i, j int) bool { return pts[i].Loss < pts[j].Loss })
			var line []string
			for _, c := range pts {
				if c.Channel == "iid" {
					line = append(line, fmt.Sprintf("%.1f,%.1f", px(c.Loss), py(c.GoodputRatio)))
				}
			}
			if len(line) > 1 {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"/>`+"\n", strings.Join(line, " "), col)
			}
			for _, c := range pts {
				tip := fmt.Sprintf("%s %s %s loss %.1f%%: %.3f, %d/%d failed", s, sizeLabel(size), c.Channel, c.Loss*100, c.GoodputRatio, c.Failures, c.Runs)
				if c.Channel == "iid" {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s</title></circle>`+"\n", px(c.Loss), py(c.GoodputRatio), col, html.EscapeString(tip))
				} else {
					x, y := px(c.Loss), py(c.GoodputRatio)
					fmt.Fprintf(&b, `<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="white" stroke="%s" stroke-width="2"><title>%s</title></path>`+"\n",
						x, y-6, x+6, y, x, y+6, x-6, y, col, html.EscapeString(tip))
				}
			}
		}
	}
	// Legend.
	ly := mt + ph + mb + 12
	lx := ml
	for si, s := range schemes {
		col := palette[si%len(palette)]
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/><circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", lx, ly, lx+28, ly, col, lx+14, ly, col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+34, ly+4, html.EscapeString(s))
		lx += 40 + 9*float64(len(s)) + 30
	}
	// Second row: marker and ceiling.
	lx, ly = ml, ly+24
	fmt.Fprintf(&b, `<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="white" stroke="#333" stroke-width="2"/>`+"\n", lx+8, ly-6, lx+14, ly, lx+8, ly+6, lx+2, ly)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">bursty (Gilbert–Elliott) channel at its mean loss</text>`+"\n", lx+22, ly+4)
	lx += 22 + 7.5*48 + 20
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", lx, ly, lx+28, ly)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">ceiling 1 − loss</text>`+"\n", lx+34, ly+4)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func sizeLabel(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
