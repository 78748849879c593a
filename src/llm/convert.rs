//! One-time conversion of a GGUF file's slow tensor types to Q8_0.
//!
//! candle has SIMD kernels for Q4_0, Q8_0 and the k-quants, but not for Q4_1, Q5_0 or Q5_1: the
//! packaged SmolLM2 (Q4_1) generated 14 tokens/s here and 29–30 after conversion to Q8_0.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek};
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

/// Whether candle multiplies this type without SIMD.
pub fn is_slow(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Whether any tensor of `content` is of a slow type.
pub fn needs_conversion(content: &gguf_file::Content) -> bool {
    content.tensor_infos.values().any(|t| is_slow(t.ggml_dtype))
}

/// Writes `src` to `dst` with every slow tensor requantised to Q8_0 (block size 32, so any
/// tensor the source could hold in a 32-block type fits). Written beside `dst` and renamed, so
/// a crash never leaves a half-written model behind.
pub fn to_q8_0(src: &Path, dst: &Path) -> candle_core::Result<()> {
    let mut reader = BufReader::new(File::open(src)?);
    let content = gguf_file::Content::read(&mut reader)?;
    let device = Device::Cpu;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        let t = content.tensor(&mut reader, name, &device)?;
        let t = if is_slow(t.dtype()) { QTensor::quantize(&t.dequantize(&device)?, GgmlDType::Q8_0)? } else { t };
        tensors.push(t);
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let named: Vec<(&str, &QTensor)> = names.iter().map(|n| n.as_str()).zip(tensors.iter()).collect();
    // Unique per writer: two processes loading the model at once each write their own copy.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let tmp = dst.with_extension(format!("partial.{}.{nanos}", std::process::id()));
    {
        let mut w = BufWriter::new(File::create(&tmp)?);
        gguf_file::write(&mut w, &metadata, &named)?;
        w.stream_position()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, dst).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}
