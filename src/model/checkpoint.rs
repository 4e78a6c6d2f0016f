//! Checkpoints in the safetensors format: every parameter with its Adam moments, plus JSON
//! metadata (model config, training state, dataset fingerprint). Written atomically (temp file +
//! rename); a checkpoint made on one backend loads on the other.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde::{de::DeserializeOwned, Serialize};

use super::{Model, ModelConfig};
use crate::backend::model_ops::ModelOps;
use crate::backend::BTensor;
use crate::error::{Error, IoError};
use crate::io::h5::Fnv1a64;
use crate::io::write_atomic;

pub const FORMAT: &str = "ainrnn-checkpoint";
/// Version 3 checksums every tensor and metadata entry with CRC-32 (metadata entry `crc32`),
/// checked on load (a damaged checkpoint is reported, never used). Version 2 (the same bytes
/// checksummed with FNV-1a 64, entry `fnv1a64`) and version 1 (no checksum) are still read.
/// Why the change: FNV-1a takes one multiply per byte, in sequence; a checkpoint of the demo's
/// HetRec model is 24 MB, checksummed at every save (each epoch) and load, and the hash took
/// more time than the rest of the save (CRC-32 runs at memory speed, `crc32fast`).
pub const VERSION: &str = "3";
/// The metadata key of the checksum (version 3).
const CHECKSUM: &str = "crc32";
/// The metadata key of version 2's checksum.
const CHECKSUM_V2: &str = "fnv1a64";

/// A checkpoint's checksum: of version 3 (CRC-32) or of version 2 (FNV-1a 64).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sum {
    Crc32,
    Fnv1a64,
}

impl Sum {
    fn key(self) -> &'static str {
        match self {
            Sum::Crc32 => CHECKSUM,
            Sum::Fnv1a64 => CHECKSUM_V2,
        }
    }
}

/// The checksum `sum` over the metadata entries but the checksums (sorted by key) and every
/// tensor's name, dtype, shape and bytes (sorted by name); lengths are included so no two
/// layouts mix. The bytes are hashed in place, never gathered into one buffer.
fn checksum<'a>(
    sum: Sum,
    meta: &HashMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> u64 {
    let (mut crc, mut fnv) = (crc32fast::Hasher::new(), Fnv1a64::default());
    let mut raw = |b: &[u8]| match sum {
        Sum::Crc32 => crc.update(b),
        Sum::Fnv1a64 => fnv.update(b),
    };
    let mut put = |b: &[u8]| {
        raw(&(b.len() as u64).to_le_bytes());
        raw(b);
    };
    let mut keys: Vec<&String> = meta
        .keys()
        .filter(|k| *k != CHECKSUM && *k != CHECKSUM_V2)
        .collect();
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
    match sum {
        Sum::Crc32 => crc.finalize() as u64,
        Sum::Fnv1a64 => fnv.finish(),
    }
}

/// A checkpoint read from disk.
pub struct Checkpoint {
    pub config: ModelConfig,
    /// Other metadata entries (JSON strings), e.g. `train_state`, `dataset`.
    pub meta: HashMap<String, String>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Integer tensors (the item-neighbourhood lists).
    tensors_u32: HashMap<String, Vec<u32>>,
    /// The file it was read from, for the errors of [`Checkpoint::restore`].
    path: std::path::PathBuf,
}

/// Names of the item-neighbourhood lists in CSR form: row pointers `[songs + 1]` and song ids
/// (u32), similarities (f32).
const NBR_PTR: &str = "songs.neighbours.ptr";
const NBR_IDS: &str = "songs.neighbours.ids";
const NBR_SIMS: &str = "songs.neighbours.sims";

/// The checksum of `meta` and the tensors of `st`.
fn checksum_of(sum: Sum, meta: &HashMap<String, String>, st: &safetensors::SafeTensors<'_>) -> u64 {
    let views = st.tensors();
    checksum(
        sum,
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
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        // "header too large" says nothing to someone who gave a dataset: name what it is.
        let kind = crate::io::sniff::kind_of(&bytes[..bytes.len().min(16)])
            .filter(|k| !k.starts_with("a safetensors"));
        match kind {
            Some(kind) => fmt(format!(
                "{kind}, not a checkpoint (written by `ainrnn train`)"
            )),
            None => fmt(format!("not a safetensors checkpoint: {e}")),
        }
    })?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| fmt(format!("unreadable header: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        other => return Err(fmt(format!("format is {other:?}, expected {FORMAT:?}"))),
    }
    let sum = match meta.get("version").map(String::as_str) {
        Some(VERSION) => Some(Sum::Crc32),
        Some("2") => Some(Sum::Fnv1a64),
        Some("1") => None, // written before checksums
        other => {
            return Err(fmt(format!(
                "checkpoint version {other:?} is not supported (this build reads 1 to {VERSION})"
            )))
        }
    };
    if let Some(sum) = sum {
        let key = sum.key();
        let stored = meta
            .get(key)
            .ok_or_else(|| fmt(format!("no {key} checksum entry: the file is damaged")))?;
        if *stored != format!("{:016x}", checksum_of(sum, &meta, &st)) {
            return Err(fmt("checksum mismatch: the file is damaged".into()));
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
            path: path.to_path_buf(),
        })
    }

    /// A metadata entry parsed from JSON.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, serde_json::Error>> {
        self.meta.get(key).map(|s| serde_json::from_str(s))
    }

    /// Builds the model on backend `b` and restores parameters and optimizer moments; an
    /// error names the checkpoint file.
    pub fn restore<B: ModelOps>(&self, b: &B, features: Option<&[f32]>) -> Result<Model<B>, Error> {
        self.restore_unnamed(b, features)
            .map_err(|e| Error::Other(format!("{}: {e}", self.path.display())))
    }

    fn restore_unnamed<B: ModelOps>(
        &self,
        b: &B,
        features: Option<&[f32]>,
    ) -> Result<Model<B>, Error> {
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
                // Training never saves one (a diverged run stops first): a damaged file.
                if let Some(i) = data.iter().position(|x| !x.is_finite()) {
                    return Err(Error::Other(format!(
                        "tensor {key} holds {} at entry {i}: the file is damaged",
                        data[i]
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
    write_atomic(path, &encode(b, model, extra)?)?;
    Ok(())
}

/// A tensor's values as read from the backend, viewed as bytes without another copy.
enum Blob {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

impl Blob {
    fn view(&self) -> (Dtype, &[u8]) {
        match self {
            Blob::F32(v) => (Dtype::F32, bytemuck::cast_slice(v)),
            Blob::U32(v) => (Dtype::U32, bytemuck::cast_slice(v)),
        }
    }
}

/// The bytes of the checkpoint [`save`] writes: one encoding can be written to several files
/// (the trainer's best epoch goes to `--out` and `<out>.last`, the same bytes).
pub fn encode<B: ModelOps>(
    b: &B,
    model: &Model<B>,
    extra: &[(&str, &dyn erased::Json)],
) -> Result<Vec<u8>, Error> {
    let mut blobs: Vec<(String, Vec<usize>, Blob)> = Vec::new();
    // Every value and Adam moment in one read-back (one wait on a GPU, not three per parameter).
    const SUFFIXES: [&str; 3] = ["", ".adam_m", ".adam_v"];
    let tensors: Vec<&BTensor<B>> = model
        .params
        .list
        .iter()
        .flat_map(|p| [&p.value, &p.m, &p.v])
        .collect();
    let mut host = b.to_host(&tensors)?.into_iter();
    for p in &model.params.list {
        for suffix in SUFFIXES {
            let values = host
                .next()
                .ok_or_else(|| Error::Other("checkpoint: a parameter was not read back".into()))?
                .into_f32("checkpoint encode")?;
            blobs.push((
                format!("{}{}", p.name, suffix),
                p.shape.clone(),
                Blob::F32(values),
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
        blobs.push((NBR_SIMS.into(), vec![sims.len()], Blob::F32(sims)));
        blobs.push((NBR_IDS.into(), vec![ids.len()], Blob::U32(ids)));
        blobs.push((NBR_PTR.into(), vec![ptr.len()], Blob::U32(ptr)));
    }
    let views: Vec<(String, TensorView<'_>)> = blobs
        .iter()
        .map(|(n, s, blob)| {
            let (t, d) = blob.view();
            TensorView::new(t, s.clone(), d)
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
        Sum::Crc32,
        &meta,
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    );
    meta.insert(CHECKSUM.to_string(), format!("{sum:016x}"));
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Other(format!("serialising checkpoint: {e}")))
}

/// The metadata key listing an ensemble's other members (file names beside the checkpoint).
const MEMBERS: &str = "ensemble";
/// The metadata key holding each member's own checksum, in `MEMBERS`' order: a member file
/// replaced by another checkpoint (a copy of another member, a model trained alone) is refused.
const MEMBER_SUMS: &str = "ensemble_checksums";

/// Records in checkpoint `path` the file names (in `path`'s folder) of the ensemble's other
/// members, or, with none, that it is a single model. Rewritten atomically with a new checksum;
/// tensors and the other metadata are kept as they are.
pub fn set_members(path: &Path, names: &[String]) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    // Checked first: a damaged file must not get a fresh, valid checksum.
    let (st, mut meta) = parse(&bytes, path)?;
    if names.is_empty() {
        let had = meta.remove(MEMBERS).is_some();
        if meta.remove(MEMBER_SUMS).is_none() && !had {
            return Ok(()); // nothing to change
        }
    } else {
        let dir = path.parent().unwrap_or(Path::new(""));
        let sums = names
            .iter()
            .map(|n| {
                let p = dir.join(n);
                let bytes = std::fs::read(&p).map_err(|e| IoError::io(&p, e))?;
                Ok(parse(&bytes, &p)?
                    .1
                    .get(CHECKSUM)
                    .cloned()
                    .unwrap_or_default())
            })
            .collect::<Result<Vec<String>, Error>>()?;
        meta.insert(MEMBERS.to_string(), to_json(names)?);
        meta.insert(MEMBER_SUMS.to_string(), to_json(&sums)?);
    }
    // Rewritten as the current version: an older file's checksum entry goes.
    meta.insert("version".to_string(), VERSION.to_string());
    meta.remove(CHECKSUM_V2);
    let sum = checksum_of(Sum::Crc32, &meta, &st);
    meta.insert(CHECKSUM.to_string(), format!("{sum:016x}"));
    let out = safetensors::serialize(st.tensors(), Some(meta))
        .map_err(|e| Error::Other(format!("serialising checkpoint: {e}")))?;
    write_atomic(path, &out)?;
    Ok(())
}

impl Checkpoint {
    /// This file's own checksum entry (empty for a version-1 file, written before checksums).
    pub fn checksum(&self) -> &str {
        self.meta
            .get(CHECKSUM)
            .or_else(|| self.meta.get(CHECKSUM_V2))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The checksums the ensemble's first checkpoint recorded for its other members, in
    /// [`Self::member_paths`]' order; `None` where it recorded none (written before they were).
    pub fn member_checksums(&self) -> Option<Vec<String>> {
        self.get::<Vec<String>>(MEMBER_SUMS)?.ok()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint-shaped file of `version` with one tensor, checksummed with `sum`.
    fn file(version: &str, sum: Option<Sum>, values: &[f32]) -> Vec<u8> {
        let data: &[u8] = bytemuck::cast_slice(values);
        let view = TensorView::new(Dtype::F32, vec![values.len()], data).unwrap();
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("version".to_string(), version.to_string());
        meta.insert("config".to_string(), "{}".to_string());
        if let Some(sum) = sum {
            let h = checksum(
                sum,
                &meta,
                [("w", Dtype::F32, &[values.len()][..], data)].into_iter(),
            );
            meta.insert(sum.key().to_string(), format!("{h:016x}"));
        }
        safetensors::serialize([("w", view)], Some(meta)).unwrap()
    }

    /// Flips one bit of the tensor's last value (the data end the file).
    fn damage(mut bytes: Vec<u8>) -> Vec<u8> {
        let n = bytes.len();
        bytes[n - 1] ^= 0x40;
        bytes
    }

    #[test]
    fn every_version_reads_and_damage_is_caught_by_its_checksum() {
        let path = Path::new("test.ckpt");
        let values = [0.5f32, -1.25, 3.0, 7.5];
        for (version, sum) in [(VERSION, Sum::Crc32), ("2", Sum::Fnv1a64)] {
            let good = file(version, Some(sum), &values);
            let (_, meta) = parse(&good, path).unwrap();
            assert!(meta.contains_key(sum.key()), "version {version}");
            let e = parse(&damage(good), path).err().unwrap().to_string();
            assert!(e.contains("checksum mismatch"), "version {version}: {e}");
            // A checksum of the other kind is no checksum of this version.
            let other = if sum == Sum::Crc32 {
                Sum::Fnv1a64
            } else {
                Sum::Crc32
            };
            let e = parse(&file(version, Some(other), &values), path)
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains(&format!("no {} checksum entry", sum.key())),
                "{e}"
            );
        }
        // Version 1 had no checksum: read as it is.
        assert!(parse(&damage(file("1", None, &values)), path).is_ok());
        let e = parse(&file("4", None, &values), path)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("version Some(\"4\") is not supported"), "{e}");
    }

    /// A value no training saves (NaN, infinity) is refused on restore, naming the file and
    /// the tensor; the same checkpoint without it restores.
    #[test]
    fn a_non_finite_value_is_refused_naming_the_file_and_tensor() {
        use crate::backend::cpu::CpuBackend;
        use crate::backend::Backend;
        let b = CpuBackend::new();
        let mut cfg = ModelConfig::new(crate::model::ModelKind::Indrnn, 20);
        (cfg.hidden, cfg.layers, cfg.emb, cfg.neighbours) = (4, 1, 3, 0);
        let model = Model::new(&b, cfg.clone(), None).unwrap();
        let mut tensors = HashMap::new();
        for p in &model.params.list {
            let v = b.to_f32(&p.value).unwrap();
            for suffix in ["", ".adam_m", ".adam_v"] {
                tensors.insert(format!("{}{suffix}", p.name), (p.shape.clone(), v.clone()));
            }
        }
        let mut ck = Checkpoint {
            config: cfg,
            meta: HashMap::new(),
            tensors,
            tensors_u32: HashMap::new(),
            path: "some/m.ckpt".into(),
        };
        assert!(ck.restore(&b, None).is_ok());
        let name = model.params.list[0].name.clone();
        for bad in [f32::NAN, f32::INFINITY] {
            ck.tensors.get_mut(&name).unwrap().1[1] = bad;
            let e = ck.restore(&b, None).err().unwrap().to_string();
            assert!(
                e.starts_with("some/m.ckpt: ") && e.contains(&format!("tensor {name} holds")),
                "{e}"
            );
        }
    }

    #[test]
    fn the_two_checksums_differ_and_stream_as_one_buffer() {
        let meta = HashMap::from([("a".to_string(), "1".to_string())]);
        let t = |d: &'static [u8]| [("x", Dtype::U8, &[2usize][..], d)].into_iter();
        let crc = checksum(Sum::Crc32, &meta, t(b"ab"));
        let fnv = checksum(Sum::Fnv1a64, &meta, t(b"ab"));
        assert_ne!(crc, fnv);
        assert_ne!(crc, checksum(Sum::Crc32, &meta, t(b"ac")));
        // Version 2's value is FNV-1a over the length-prefixed stream, as it was written.
        let mut buf = Vec::new();
        for piece in [&b"a"[..], b"1", b"x", b"U8 [2]", b"ab"] {
            buf.extend_from_slice(&(piece.len() as u64).to_le_bytes());
            buf.extend_from_slice(piece);
        }
        assert_eq!(fnv, crate::io::h5::fnv1a64(&buf));
        assert_eq!(crc, crc32fast::hash(&buf) as u64);
    }
}
