package inference

import _ "embed"

// The default model is rebuilt from the data below by `make model`.
//
//go:embed model/default.onnx
var defaultModel []byte

//go:embed data/uci_sentences.tsv
var sentencesTSV []byte

// Gzip keeps the ~2 MB of rated sentences to ~0.8 MB in the binary.
//
//go:embed data/vader_groundtruth.tsv.gz
var groundTruthGz []byte

//go:embed data/afinn165.tsv
var afinnTSV []byte
