package train

import (
	"encoding/json"

	"github.com/nexfield/nexfield/inference/internal/features"
	"github.com/nexfield/nexfield/inference/internal/onnxmodel"
)

// exportModel folds the binary log-odds z = l(x), the neutral log-odds
// u = neu(x), band c, gate g and scale s into three logits (−z/2,
// (c+g·noEvidence+s·u)/2, +z/2): softmax then picks neutral exactly when
// |z| < c+g·noEvidence+s·u, and P(pos)/(P(pos)+P(neg)) stays sigmoid(z).
func exportModel(l, neu *linear, vocab []uint32, cfg features.Config) ([]byte, error) {
	dim := cfg.Dim()
	w := make([]float32, dim*3)
	nh := 1 << cfg.HashBits
	cols := cfg.Columns()
	for i := range dim {
		src := nh + i - cols // dense features
		if i < cols {
			src = i
			if vocab != nil {
				src = int(vocab[i])
			}
		}
		w[3*i] = float32(-l.w[src] / 2)
		w[3*i+1] = float32(float64(cfg.NeutralScale*neu.w[src]) / 2)
		w[3*i+2] = float32(l.w[src] / 2)
	}
	noEv := cols + features.NoEvidence
	w[3*noEv+1] = float32((float64(cfg.NeutralScale*neu.w[nh+features.NoEvidence]) + cfg.EvidenceGate) / 2)
	b := []float32{float32(-l.b / 2), float32((cfg.NeutralBand + float64(cfg.NeutralScale*neu.b)) / 2), float32(l.b / 2)}
	meta, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return onnxmodel.Encode(w, b, dim, 3, string(meta)), nil
}
