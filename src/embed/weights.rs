//! The embedder's weights as its forward pass reads them (query, key and value fused into one
//! matrix, every dense matrix `[in, out]`), kept in a file beside the model so that later loads
//! map it instead of building it again: building it copies and transposes every matrix, which
//! cost a cold search about 0.2 s. Large matrices are then used in place, from the page cache.
//!
//! The file is made from the public model and holds nothing of the user's. It is written whole
//! or not at all (a file of its own, then a rename), and made again when it does not read back
//! or the model file it came from has changed. Where it cannot be written (a read-only models
//! folder) the same bytes live in anonymous memory for the life of the process instead.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use candle_core::{Device, Result, Tensor};
use memmap2::{Mmap, MmapOptions};
use safetensors::{Dtype, SafeTensors};

/// What the file holds; changed whenever that changes, so an older file is made again.
const FORMAT: (&str, &str) = ("engram.layout", "1");
/// The model file's size and modification time when the file was made from it.
const SOURCE: &str = "engram.source";

/// A set of f32 tensors in one read-only mapping.
pub struct Weights {
    map: Arc<Mmap>,
    /// Byte offset into the mapping and shape, by name.
    tensors: HashMap<String, (usize, Vec<usize>)>,
}

/// A row-major f32 matrix inside [`Weights`].
#[derive(Clone)]
pub struct Matrix {
    map: Arc<Mmap>,
    offset: usize,
    rows: usize,
    cols: usize,
}

impl Matrix {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn data(&self) -> &[f32] {
        // SAFETY: `Weights::read` checked that the tensor lies inside the mapping and starts on
        // a 4-byte boundary; the mapping is read-only, never changed (the file is replaced only
        // by rename) and lives as long as `self.map`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.offset).cast::<f32>(), self.rows * self.cols) }
    }

    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.rows).then(|| &self.data()[i * self.cols..(i + 1) * self.cols])
    }
}

/// Where the weights made from the model file `source` are kept.
pub fn path_for(source: &Path) -> PathBuf {
    source.with_extension("engram-layout")
}

impl Weights {
    /// The weights kept for `source`, when a file made from it as it is now reads back.
    pub fn open(source: &Path) -> Option<Weights> {
        let path = path_for(source);
        let file = std::fs::File::open(&path).ok()?;
        // SAFETY: engram replaces this file only by rename, never writes into it, so the bytes
        // under the mapping do not change.
        let map = unsafe { Mmap::map(&file) }.ok()?;
        let (weights, made_from) = Weights::read(map).ok()?;
        (made_from == stamp(source)?).then_some(weights)
    }

    /// Keeps `tensors` (f32) as the weights made from `source`: in the file beside it, or where
    /// that cannot be written, in anonymous memory.
    pub fn keep(source: &Path, tensors: &[(String, Tensor)]) -> std::result::Result<Weights, String> {
        let info = HashMap::from([(FORMAT.0.to_string(), FORMAT.1.to_string()), (SOURCE.to_string(), stamp(source).unwrap_or_default())]);
        let bytes = safetensors::serialize(tensors.iter().map(|(name, t)| (name.as_str(), t)), Some(info)).map_err(|e| e.to_string())?;
        if write_whole(&path_for(source), &bytes).is_ok() {
            if let Some(weights) = Weights::open(source) {
                return Ok(weights);
            }
        }
        let mut anon = MmapOptions::new().len(bytes.len()).map_anon().map_err(|e| e.to_string())?;
        anon.copy_from_slice(&bytes);
        Ok(Weights::read(anon.make_read_only().map_err(|e| e.to_string())?)?.0)
    }

    /// The tensors in `map` and the source stamp they were made from.
    fn read(map: Mmap) -> std::result::Result<(Weights, String), String> {
        let (tensors, made_from) = {
            let (_, meta) = SafeTensors::read_metadata(&map).map_err(|e| e.to_string())?;
            let info = meta.metadata().clone().unwrap_or_default();
            if info.get(FORMAT.0).map(String::as_str) != Some(FORMAT.1) {
                return Err("written by another version".into());
            }
            let st = SafeTensors::deserialize(&map).map_err(|e| e.to_string())?;
            let mut tensors = HashMap::new();
            for (name, view) in st.tensors() {
                let offset = view.data().as_ptr() as usize - map.as_ptr() as usize;
                if view.dtype() != Dtype::F32 || !offset.is_multiple_of(std::mem::align_of::<f32>()) {
                    return Err(format!("{name} is not aligned f32"));
                }
                tensors.insert(name, (offset, view.shape().to_vec()));
            }
            (tensors, info.get(SOURCE).cloned().unwrap_or_default())
        };
        Ok((Weights { map: Arc::new(map), tensors }, made_from))
    }

    fn get(&self, name: &str) -> Result<&(usize, Vec<usize>)> {
        self.tensors.get(name).ok_or_else(|| candle_core::Error::Msg(format!("the laid-out weights lack {name}")))
    }

    /// The two-dimensional tensor `name`, used where it is.
    pub fn matrix(&self, name: &str) -> Result<Matrix> {
        match self.get(name)? {
            (offset, shape) if shape.len() == 2 => Ok(Matrix { map: self.map.clone(), offset: *offset, rows: shape[0], cols: shape[1] }),
            (_, shape) => candle_core::bail!("{name} has shape {shape:?}, not a matrix"),
        }
    }

    /// The tensor `name`, copied (for the small ones: biases, norms, positions).
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let (offset, shape) = self.get(name)?;
        let m = Matrix { map: self.map.clone(), offset: *offset, rows: shape.iter().product(), cols: 1 };
        Tensor::from_slice(m.data(), shape.as_slice(), device)
    }
}

/// The model file's size and modification time, which change when it is replaced.
fn stamp(source: &Path) -> Option<String> {
    let meta = std::fs::metadata(source).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!("{}:{}", meta.len(), modified.as_nanos()))
}

/// Writes `bytes` to `path` through a file of this process's own and a rename, so a reader (or
/// another process making the same file) sees the old file or the whole new one.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("engram-layout.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors() -> Vec<(String, Tensor)> {
        let m = Tensor::from_vec((0..12).map(|i| i as f32).collect::<Vec<_>>(), (3, 4), &Device::Cpu).unwrap();
        let v = Tensor::from_vec(vec![0.5f32, -1.0], 2, &Device::Cpu).unwrap();
        vec![("m".into(), m), ("v".into(), v)]
    }

    #[test]
    fn kept_weights_map_back_and_are_made_again_when_the_model_changes() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("model.safetensors");
        std::fs::write(&source, b"model one").unwrap();
        assert!(Weights::open(&source).is_none());
        Weights::keep(&source, &tensors()).unwrap();
        let opened = Weights::open(&source).expect("the file just written");
        let m = opened.matrix("m").unwrap();
        assert_eq!((m.rows(), m.cols()), (3, 4));
        assert_eq!(m.row(1).unwrap(), [4.0, 5.0, 6.0, 7.0]);
        assert!(m.row(3).is_none());
        assert_eq!(opened.tensor("v", &Device::Cpu).unwrap().to_vec1::<f32>().unwrap(), [0.5, -1.0]);
        assert!(opened.matrix("v").is_err() && opened.matrix("absent").is_err());
        // Nothing of the writing is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");

        // A replaced model (another size) makes the kept file stale.
        std::fs::write(&source, b"model two, longer").unwrap();
        assert!(Weights::open(&source).is_none());
    }

    #[test]
    fn a_damaged_file_is_not_used_and_an_unwritable_folder_keeps_the_weights_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("model.safetensors");
        std::fs::write(&source, b"model").unwrap();
        Weights::keep(&source, &tensors()).unwrap();
        let bytes = std::fs::read(path_for(&source)).unwrap();
        std::fs::write(path_for(&source), &bytes[..bytes.len() - 5]).unwrap();
        assert!(Weights::open(&source).is_none(), "a truncated file");
        std::fs::write(path_for(&source), b"\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
        assert!(Weights::open(&source).is_none(), "a header past the end");

        // A source in a folder that does not exist stands for one that cannot be written.
        let nowhere = dir.path().join("absent").join("model.safetensors");
        let kept = Weights::keep(&nowhere, &tensors()).unwrap();
        assert_eq!(kept.matrix("m").unwrap().row(2).unwrap(), [8.0, 9.0, 10.0, 11.0]);
    }
}
