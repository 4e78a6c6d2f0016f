//! Checkpoints in the safetensors format: every parameter with its Adam moments, plus JSON
//! metadata (model config, training state, dataset fingerprint). Written atomically (temp file +
//! rename); a checkpoint made on one backend loads on the other.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde::{de::DeserializeOwned, Serialize};

use super::{Model, ModelConfig};
use crate::backend::model_ops::ModelOps;
use crate::error::{Error, IoError};
use crate::io::h5::fnv1a64;
use crate::io::write_atomic;

pub const FORMAT: &str = "ainrnn-checkpoint";
/// Version 2 adds the `fnv1a64` metadata entry, a checksum of every tensor and metadata entry,
/// checked on load (a damaged checkpoint is reported, never used). Version 1 (no checksum) is
/// still read.
pub const VERSION: &str = "2";
/// The metadata key of the checksum.
const CHECKSUM: &str = "fnv1a64";

/// FNV-1a 64 over the metadata entries but [`CHECKSUM`] (sorted by key) and every tensor's
/// name, dtype, shape and bytes (sorted by name); lengths are included so no two layouts mix.
fn checksum<'a>(
    meta: &HashMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> u64 {
    let mut buf: Vec<u8> = Vec::new();
    let mut put = |b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        buf.extend_from_slice(b);
    };
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != CHECKSUM).collect();
    keys.sort();
    for k in keys {
        put(k.as_bytes());
        put(meta[k].as_bytes());
    }
    let mut ts: Vec<_> = tensors.collect();
    ts.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape, data) in ts {
        put(name.as_bytes());
        put(format!("{dtype:?} {shape:?}").as_bytes());
        put(data);
    }
    fnv1a64(&buf)
}

/// A checkpoint read from disk.
pub struct Checkpoint {
    pub config: ModelConfig,
    /// Other metadata entries (JSON strings), e.g. `train_state`, `dataset`.
    pub meta: HashMap<String, String>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Integer tensors (the item-neighbourhood lists).
    tensors_u32: HashMap<String, Vec<u32>>,
}

/// Names of the item-neighbourhood lists in CSR form: row pointers `[songs + 1]` and song ids
/// (u32), similarities (f32).
const NBR_PTR: &str = "songs.neighbours.ptr";
const NBR_IDS: &str = "songs.neighbours.ids";
const NBR_SIMS: &str = "songs.neighbours.sims";

/// The checksum of `meta` and the tensors of `st`.
fn checksum_of(meta: &HashMap<String, String>, st: &safetensors::SafeTensors<'_>) -> u64 {
    let views = st.tensors();
    checksum(
        meta,
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    )
}

/// Parses checkpoint `bytes` (read from `path`) and checks format, version and checksum.
fn parse<'a>(
    bytes: &'a [u8],
    path: &Path,
) -> Result<(safetensors::SafeTensors<'a>, HashMap<String, String>), IoError> {
    let fmt = |reason: String| IoError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| fmt(format!("not a safetensors checkpoint: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| fmt(format!("unreadable header: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        other => return Err(fmt(format!("format is {other:?}, expected {FORMAT:?}"))),
    }
    match meta.get("version").map(String::as_str) {
        Some(VERSION) => {
            let stored = meta
                .get(CHECKSUM)
                .ok_or_else(|| fmt(format!("no {CHECKSUM} checksum entry: the file is damaged")))?;
            if *stored != format!("{:016x}", checksum_of(&meta, &st)) {
                return Err(fmt("checksum mismatch: the file is damaged".into()));
            }
        }
        Some("1") => {} // written before checksums
        other => {
            return Err(fmt(format!(
                "checkpoint version {other:?} is not supported (this build reads {VERSION})"
            )))
        }
    }
    Ok((st, meta))
}

impl Checkpoint {
    /// Reads and checks a checkpoint; errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, IoError> {
        let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
        let fmt = |reason: String| IoError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let (st, meta) = parse(&bytes, path)?;
        let config: ModelConfig = serde_json::from_str(
            meta.get("config")
                .ok_or_else(|| fmt("no model config".into()))?,
        )
        .map_err(|e| fmt(format!("model config: {e}")))?;
        let mut tensors = HashMap::new();
        let mut tensors_u32 = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() == Dtype::U32 && (name == NBR_PTR || name == NBR_IDS) {
                tensors_u32.insert(name, bytemuck::pod_collect_to_vec(view.data()));
                continue;
            }
            if view.dtype() != Dtype::F32 {
                return Err(fmt(format!(
                    "tensor {name} is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let data: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
            tensors.insert(name, (view.shape().to_vec(), data));
        }
        Ok(Checkpoint {
            config,
            meta,
            tensors,
            tensors_u32,
        })
    }

    /// A metadata entry parsed from JSON.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, serde_json::Error>> {
        self.meta.get(key).map(|s| serde_json::from_str(s))
    }

    /// Builds the model on backend `b` and restores parameters and optimizer moments.
    pub fn restore<B: ModelOps>(&self, b: &B, features: Option<&[f32]>) -> Result<Model<B>, Error> {
        let mut model = Model::new(b, self.config.clone(), features)?;
        for p in &mut model.params.list {
            for (suffix, target) in [
                ("", &mut p.value),
                (".adam_m", &mut p.m),
                (".adam_v", &mut p.v),
            ] {
                let key = format!("{}{}", p.name, suffix);
                let (shape, data) = self
                    .tensors
                    .get(&key)
                    .ok_or_else(|| Error::Other(format!("checkpoint lacks tensor {key}")))?;
                if shape != &p.shape {
                    return Err(Error::Other(format!(
                        "checkpoint tensor {key} has shape {shape:?}, the model expects {:?}",
                        p.shape
                    )));
                }
                b.write_f32(target, data)?;
            }
        }
        if self.config.neighbours > 0 {
            model.scorer.set_neighbours(self.neighbours()?);
        }
        if let Some(step) = self.meta.get("adam_step") {
            model.params.step = step
                .parse()
                .map_err(|e| Error::Other(format!("checkpoint adam_step {step:?}: {e}")))?;
        }
        Ok(model)
    }
}

impl Checkpoint {
    /// The stored item-neighbourhood lists, checked.
    fn neighbours(&self) -> Result<Vec<Vec<(u32, f32)>>, Error> {
        let songs = self.config.songs;
        let bad = |why: String| Error::Other(format!("checkpoint neighbourhood lists: {why}"));
        let (Some(ptr), Some(ids), Some((_, sims))) = (
            self.tensors_u32.get(NBR_PTR),
            self.tensors_u32.get(NBR_IDS),
            self.tensors.get(NBR_SIMS),
        ) else {
            return Err(bad(format!(
                "the model scores with neighbours but {NBR_PTR}, {NBR_IDS} or {NBR_SIMS} is missing"
            )));
        };
        if ptr.len() != songs + 1
            || ids.len() != sims.len()
            || ptr[songs] as usize != ids.len()
            || ptr.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad(format!(
                "{} row pointers for {songs} songs, {} ids, {} similarities: inconsistent",
                ptr.len(),
                ids.len(),
                sims.len()
            )));
        }
        if let Some(&s) = ids.iter().find(|&&s| s as usize >= songs) {
            return Err(bad(format!("song {s} is out of range ({songs} songs)")));
        }
        Ok((0..songs)
            .map(|i| {
                let r = ptr[i] as usize..ptr[i + 1] as usize;
                ids[r.clone()]
                    .iter()
                    .copied()
                    .zip(sims[r].iter().copied())
                    .collect()
            })
            .collect())
    }
}

/// Writes `model` with extra JSON metadata entries, atomically.
pub fn save<B: ModelOps>(
    b: &B,
    model: &Model<B>,
    extra: &[(&str, &dyn erased::Json)],
    path: &Path,
) -> Result<(), Error> {
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = Vec::new();
    for p in &model.params.list {
        for (suffix, t) in [("", &p.value), (".adam_m", &p.m), (".adam_v", &p.v)] {
            let v = b.to_f32(t)?;
            blobs.push((
                format!("{}{}", p.name, suffix),
                p.shape.clone(),
                bytemuck::cast_slice(&v).to_vec(),
                Dtype::F32,
            ));
        }
    }
    let nbr = model.scorer.neighbours();
    if model.cfg.neighbours > 0 {
        // Written even before fitting (then every list is empty), so the model always restores.
        let mut ptr = vec![0u32];
        let (mut ids, mut sims) = (Vec::new(), Vec::new());
        for i in 0..model.cfg.songs {
            let l = nbr.get(i).map(Vec::as_slice).unwrap_or_default();
            ids.extend(l.iter().map(|x| x.0));
            sims.extend(l.iter().map(|x| x.1));
            ptr.push(ids.len() as u32);
        }
        blobs.push((
            NBR_SIMS.into(),
            vec![sims.len()],
            bytemuck::cast_slice(&sims).to_vec(),
            Dtype::F32,
        ));
        blobs.push((
            NBR_IDS.into(),
            vec![ids.len()],
            bytemuck::cast_slice(&ids).to_vec(),
            Dtype::U32,
        ));
        blobs.push((
            NBR_PTR.into(),
            vec![ptr.len()],
            bytemuck::cast_slice(&ptr).to_vec(),
            Dtype::U32,
        ));
    }
    let views: Vec<(String, TensorView<'_>)> = blobs
        .iter()
        .map(|(n, s, d, t)| {
            TensorView::new(*t, s.clone(), d)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Other(format!("checkpoint tensor {n}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("version".to_string(), VERSION.to_string());
    meta.insert("config".to_string(), to_json(&model.cfg)?);
    meta.insert("adam_step".to_string(), model.params.step.to_string());
    for (k, v) in extra {
        meta.insert(k.to_string(), v.to_json()?);
    }
    let sum = checksum(
        &meta,
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    );
    meta.insert(CHECKSUM.to_string(), format!("{sum:016x}"));
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Other(format!("serialising checkpoint: {e}")))?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// The metadata key listing an ensemble's other members (file names beside the checkpoint).
const MEMBERS: &str = "ensemble";

/// Records in checkpoint `path` the file names (in `path`'s folder) of the ensemble's other
/// members, or, with none, that it is a single model. Rewritten atomically with a new checksum;
/// tensors and the other metadata are kept as they are.
pub fn set_members(path: &Path, names: &[String]) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    // Checked first: a damaged file must not get a fresh, valid checksum.
    let (st, mut meta) = parse(&bytes, path)?;
    if names.is_empty() {
        if meta.remove(MEMBERS).is_none() {
            return Ok(()); // nothing to change
        }
    } else {
        meta.insert(MEMBERS.to_string(), to_json(names)?);
    }
    meta.insert("version".to_string(), VERSION.to_string());
    let sum = checksum_of(&meta, &st);
    meta.insert(CHECKSUM.to_string(), format!("{sum:016x}"));
    let out = safetensors::serialize(st.tensors(), Some(meta))
        .map_err(|e| Error::Other(format!("serialising checkpoint: {e}")))?;
    write_atomic(path, &out)?;
    Ok(())
}

impl Checkpoint {
    /// The paths of the ensemble's other members when the checkpoint read from `path` is the
    /// first of an ensemble; empty for a single model.
    pub fn member_paths(&self, path: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
        let Some(names) = self.get::<Vec<String>>(MEMBERS) else {
            return Ok(vec![]);
        };
        let names = names
            .map_err(|e| Error::Other(format!("{}: ensemble members: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        names
            .iter()
            .map(|n| {
                // Names only: a member lives beside the first, never elsewhere.
                if n.is_empty() || Path::new(n).file_name() != Some(std::ffi::OsStr::new(n)) {
                    Err(Error::Other(format!(
                        "{}: ensemble member {n:?} is not a file name",
                        path.display()
                    )))
                } else {
                    Ok(dir.join(n))
                }
            })
            .collect()
    }
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Other(format!("checkpoint metadata: {e}")))
}

/// Object-safe JSON serialisation for heterogeneous metadata entries.
pub mod erased {
    use crate::error::Error;

    pub trait Json {
        fn to_json(&self) -> Result<String, Error>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, Error> {
            super::to_json(self)
        }
    }
}
