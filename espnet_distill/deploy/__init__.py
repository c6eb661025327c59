"""Deployment of the distilled upstreams: ONNX export with its parity check, int8 quantization
(onnxruntime, and PyTorch dynamic quantization of the LSTM students), and Hugging Face's
``HubertModel`` format for the transformer upstreams."""
