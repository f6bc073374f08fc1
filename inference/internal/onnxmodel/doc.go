// Package onnxmodel is the sentiment model's file and its two forward
// passes: the ONNX encoder and inspector (onnx-go's protobuf types are
// internal), the loader's checks, the plain-Go scorer of the weights, and
// the onnx-go runner.
//
// The graph is MatMul + Add + Softmax: gorgonnx's Gemm overwrites its bias
// tensor on every run, so Encode never emits it and Parse refuses it.
package onnxmodel
