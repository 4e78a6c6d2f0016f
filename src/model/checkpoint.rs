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
use crate::util::write_atomic;

pub const FORMAT: &str = "ainrnn-checkpoint";
pub const VERSION: &str = "1";

/// A checkpoint read from disk.
pub struct Checkpoint {
    pub config: ModelConfig,
    /// Other metadata entries (JSON strings), e.g. `train_state`, `dataset`.
    pub meta: HashMap<String, String>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Checkpoint {
    /// Reads and checks a checkpoint; errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, IoError> {
        let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
        let fmt = |reason: String| IoError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| fmt(format!("not a safetensors checkpoint: {e}")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| fmt(format!("unreadable header: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            other => return Err(fmt(format!("format is {other:?}, expected {FORMAT:?}"))),
        }
        if meta.get("version").map(String::as_str) != Some(VERSION) {
            return Err(fmt(format!(
                "checkpoint version {:?} is not supported (this build reads {VERSION})",
                meta.get("version")
            )));
        }
        let config: ModelConfig = serde_json::from_str(
            meta.get("config")
                .ok_or_else(|| fmt("no model config".into()))?,
        )
        .map_err(|e| fmt(format!("model config: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
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
        if let Some(step) = self.meta.get("adam_step") {
            model.params.step = step
                .parse()
                .map_err(|e| Error::Other(format!("checkpoint adam_step {step:?}: {e}")))?;
        }
        Ok(model)
    }
}

/// Writes `model` with extra JSON metadata entries, atomically.
pub fn save<B: ModelOps>(
    b: &B,
    model: &Model<B>,
    extra: &[(&str, &dyn erased::Json)],
    path: &Path,
) -> Result<(), Error> {
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for p in &model.params.list {
        for (suffix, t) in [("", &p.value), (".adam_m", &p.m), (".adam_v", &p.v)] {
            let v = b.to_f32(t)?;
            blobs.push((
                format!("{}{}", p.name, suffix),
                p.shape.clone(),
                bytemuck::cast_slice(&v).to_vec(),
            ));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = blobs
        .iter()
        .map(|(n, s, d)| {
            TensorView::new(Dtype::F32, s.clone(), d)
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
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Other(format!("serialising checkpoint: {e}")))?;
    write_atomic(path, &bytes)?;
    Ok(())
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
