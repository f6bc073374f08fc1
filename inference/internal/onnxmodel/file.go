package onnxmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The ONNX protobuf types inside onnx-go are internal, so the model file is
// written and inspected with this small encoder/decoder. It covers only the
// fields a MatMul+Add+Softmax graph needs; field numbers follow onnx.proto3.

const (
	onnxIRVersion = 6
	onnxOpset     = 11
	// InputName and OutputName are the graph's input and output.
	InputName      = "features"
	OutputName     = "scores"
	metaFeaturizer = "nexfield.featurizer"
)

type pbuf struct{ b []byte }

func (p *pbuf) varint(v uint64)          { p.b = binary.AppendUvarint(p.b, v) }
func (p *pbuf) tag(field, wire int)      { p.varint(uint64(field<<3 | wire)) }
func (p *pbuf) uint(field int, v uint64) { p.tag(field, 0); p.varint(v) }
func (p *pbuf) bytes(field int, b []byte) {
	p.tag(field, 2)
	p.varint(uint64(len(b)))
	p.b = append(p.b, b...)
}
func (p *pbuf) str(field int, s string) { p.bytes(field, []byte(s)) }
func (p *pbuf) msg(field int, m *pbuf)  { p.bytes(field, m.b) }

func valueInfo(name string, dims ...int) *pbuf {
	shape := &pbuf{}
	for _, d := range dims {
		dim := &pbuf{}
		dim.uint(1, uint64(d))
		shape.msg(1, dim)
	}
	tt := &pbuf{}
	tt.uint(1, 1) // elem_type FLOAT
	tt.msg(2, shape)
	typ := &pbuf{}
	typ.msg(1, tt)
	vi := &pbuf{}
	vi.str(1, name)
	vi.msg(2, typ)
	return vi
}

func tensorProto(name string, data []float32, dims ...int) *pbuf {
	t := &pbuf{}
	packed := &pbuf{}
	for _, d := range dims {
		packed.varint(uint64(d))
	}
	t.bytes(1, packed.b)
	t.uint(2, 1) // FLOAT
	t.str(8, name)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	t.bytes(9, raw)
	return t
}

func node(op, name string, in []string, out string, attrs ...*pbuf) *pbuf {
	n := &pbuf{}
	for _, s := range in {
		n.str(1, s)
	}
	n.str(2, out)
	n.str(3, name)
	n.str(4, op)
	for _, a := range attrs {
		n.msg(5, a)
	}
	return n
}

// Encode writes logits = features·W + B, scores = Softmax(logits, axis 1).
// Gemm is avoided on purpose: gorgonnx's Gemm overwrites its bias on each run.
func Encode(w []float32, b []float32, dim, classes int, meta string) []byte {
	return EncodeAs(w, b, dim, classes, meta, onnxOpset, InputName, OutputName)
}

// EncodeAs writes the graph with another opset or other names, so the
// loader's tests can build files it must refuse.
func EncodeAs(w []float32, b []float32, dim, classes int, meta string, opset int, inputName, outputName string) []byte {
	g := &pbuf{}
	g.msg(1, node("MatMul", "matmul", []string{inputName, "W"}, "mm"))
	g.msg(1, node("Add", "add", []string{"mm", "B"}, "logits"))
	axis := &pbuf{}
	axis.str(1, "axis")
	axis.uint(3, 1)
	axis.uint(20, 2) // INT
	g.msg(1, node("Softmax", "softmax", []string{"logits"}, outputName, axis))
	g.str(2, "nexfield_sentiment")
	g.msg(5, tensorProto("W", w, dim, classes))
	g.msg(5, tensorProto("B", b, classes))
	g.msg(11, valueInfo(inputName, 1, dim))
	g.msg(12, valueInfo(outputName, 1, classes))
	m := &pbuf{}
	m.uint(1, onnxIRVersion)
	m.str(2, "nexfield")
	m.msg(7, g)
	op := &pbuf{}
	op.str(1, "")
	op.uint(2, uint64(opset))
	m.msg(8, op)
	kv := &pbuf{}
	kv.str(1, metaFeaturizer)
	kv.str(2, meta)
	m.msg(14, kv)
	return m.b
}

// pfield is one decoded protobuf field.
type pfield struct {
	num  int
	wire int
	v    uint64
	b    []byte
}

var errProto = errors.New("malformed protobuf")

func parseFields(b []byte) ([]pfield, error) {
	var out []pfield
	for len(b) > 0 {
		k, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errProto
		}
		b = b[n:]
		f := pfield{num: int(k >> 3), wire: int(k & 7)}
		switch f.wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errProto
			}
			f.v, b = v, b[n:]
		case 1:
			if len(b) < 8 {
				return nil, errProto
			}
			f.v, b = binary.LittleEndian.Uint64(b), b[8:]
		case 5:
			if len(b) < 4 {
				return nil, errProto
			}
			f.v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return nil, errProto
			}
			f.b, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, errProto
		}
		if f.num == 0 {
			return nil, errProto
		}
		out = append(out, f)
	}
	return out, nil
}

// onnxInfo is what the loader checks before handing the file to onnx-go.
type onnxInfo struct {
	opset   int64
	inputs  map[string][]int64
	outputs map[string][]int64
	inits   map[string]onnxTensor
	ops     []string
	meta    map[string]string
}

type onnxTensor struct {
	dims []int64
	data []float32
}

func inspectONNX(b []byte) (*onnxInfo, error) {
	top, err := parseFields(b)
	if err != nil {
		return nil, err
	}
	info := &onnxInfo{opset: -1, inputs: map[string][]int64{}, outputs: map[string][]int64{},
		inits: map[string]onnxTensor{}, meta: map[string]string{}}
	var graph []byte
	for _, f := range top {
		switch {
		case f.num == 7 && f.wire == 2:
			graph = f.b
		case f.num == 8 && f.wire == 2:
			fs, err := parseFields(f.b)
			if err != nil {
				return nil, err
			}
			domain, ver := "", int64(0)
			for _, g := range fs {
				if g.num == 1 && g.wire == 2 {
					domain = string(g.b)
				}
				if g.num == 2 && g.wire == 0 {
					ver = int64(g.v)
				}
			}
			if domain == "" || domain == "ai.onnx" {
				info.opset = ver
			}
		case f.num == 14 && f.wire == 2:
			fs, err := parseFields(f.b)
			if err != nil {
				return nil, err
			}
			var k, v string
			for _, g := range fs {
				if g.wire == 2 && g.num == 1 {
					k = string(g.b)
				}
				if g.wire == 2 && g.num == 2 {
					v = string(g.b)
				}
			}
			info.meta[k] = v
		}
	}
	if graph == nil {
		return nil, errors.New("no graph")
	}
	gf, err := parseFields(graph)
	if err != nil {
		return nil, err
	}
	for _, f := range gf {
		if f.wire != 2 {
			continue
		}
		switch f.num {
		case 1:
			fs, err := parseFields(f.b)
			if err != nil {
				return nil, err
			}
			for _, g := range fs {
				if g.num == 4 && g.wire == 2 {
					info.ops = append(info.ops, string(g.b))
				}
			}
		case 5:
			name, t, err := decodeTensor(f.b)
			if err != nil {
				return nil, err
			}
			info.inits[name] = t
		case 11, 12:
			name, dims, err := decodeValueInfo(f.b)
			if err != nil {
				return nil, err
			}
			if f.num == 11 {
				info.inputs[name] = dims
			} else {
				info.outputs[name] = dims
			}
		}
	}
	return info, nil
}

func decodeTensor(b []byte) (string, onnxTensor, error) {
	fs, err := parseFields(b)
	if err != nil {
		return "", onnxTensor{}, err
	}
	var name string
	var t onnxTensor
	dtype := uint64(0)
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == 0:
			t.dims = append(t.dims, int64(f.v))
		case f.num == 1 && f.wire == 2:
			for p := f.b; len(p) > 0; {
				v, n := binary.Uvarint(p)
				if n <= 0 {
					return "", t, errProto
				}
				t.dims = append(t.dims, int64(v))
				p = p[n:]
			}
		case f.num == 2 && f.wire == 0:
			dtype = f.v
		case f.num == 8 && f.wire == 2:
			name = string(f.b)
		case f.num == 9 && f.wire == 2:
			if len(f.b)%4 != 0 {
				return "", t, fmt.Errorf("tensor %q: raw data of %d bytes", name, len(f.b))
			}
			t.data = make([]float32, len(f.b)/4)
			for i := range t.data {
				t.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(f.b[4*i:]))
			}
		case f.num == 4 && f.wire == 5:
			t.data = append(t.data, math.Float32frombits(uint32(f.v)))
		case f.num == 4 && f.wire == 2:
			for p := f.b; len(p) >= 4; p = p[4:] {
				t.data = append(t.data, math.Float32frombits(binary.LittleEndian.Uint32(p)))
			}
		}
	}
	if dtype != 1 {
		return name, t, fmt.Errorf("tensor %q: data type %d, want FLOAT (1)", name, dtype)
	}
	return name, t, nil
}

func decodeValueInfo(b []byte) (string, []int64, error) {
	fs, err := parseFields(b)
	if err != nil {
		return "", nil, err
	}
	var name string
	var dims []int64
	for _, f := range fs {
		if f.num == 1 && f.wire == 2 {
			name = string(f.b)
		}
		if f.num != 2 || f.wire != 2 {
			continue
		}
		tp, err := parseFields(f.b)
		if err != nil {
			return "", nil, err
		}
		for _, t := range tp {
			if t.num != 1 || t.wire != 2 {
				continue
			}
			tt, err := parseFields(t.b)
			if err != nil {
				return "", nil, err
			}
			for _, s := range tt {
				if s.num != 2 || s.wire != 2 {
					continue
				}
				sh, err := parseFields(s.b)
				if err != nil {
					return "", nil, err
				}
				for _, d := range sh {
					if d.num != 1 || d.wire != 2 {
						continue
					}
					dd, err := parseFields(d.b)
					if err != nil {
						return "", nil, err
					}
					v := int64(-1) // symbolic dimension
					for _, x := range dd {
						if x.num == 1 && x.wire == 0 {
							v = int64(x.v)
						}
					}
					dims = append(dims, v)
				}
			}
		}
	}
	return name, dims, nil
}
