//! What fixes a model's shape: its kind and sizes (stored in checkpoints).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Ainrnn,
    Indrnn,
    Lstm,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ainrnn => "ainrnn",
            ModelKind::Indrnn => "indrnn",
            ModelKind::Lstm => "lstm",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ainrnn" => Ok(ModelKind::Ainrnn),
            "indrnn" => Ok(ModelKind::Indrnn),
            "lstm" => Ok(ModelKind::Lstm),
            o => Err(format!(
                "unknown model {o:?} (expected ainrnn, indrnn or lstm)"
            )),
        }
    }
}

/// Everything that fixes the model's shape; stored in checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub hidden: usize,
    pub layers: usize,
    /// Song embedding size: the input embedding and the user/song output representation
    /// (one tied table).
    pub emb: usize,
    pub att: usize,
    pub portrait_dim: usize,
    pub max_history: usize,
    pub dropout: f32,
    /// IndRNN recurrent weights are kept within ±mag^(1/max_history).
    pub mag: f32,
    pub songs: usize,
    pub feature_dim: usize,
    /// Portrait table sizes (0 = no portrait).
    pub n_age: usize,
    pub n_lang: usize,
    pub n_genre: usize,
    /// Songs per catalogue tile.
    pub tile: usize,
    pub seed: u64,
    /// Neighbours kept per song for the item-neighbourhood term of the scores (0: no term).
    #[serde(default)]
    pub neighbours: usize,
}

/// Neighbours per song in the scores' item-neighbourhood term (as many as item-kNN keeps in
/// `compare`).
pub const DEFAULT_NEIGHBOURS: usize = 200;

impl ModelConfig {
    /// Defaults of the paper where it gives them (5 layers, dropout 0.5) and sizes that train in
    /// minutes on a CPU for the bundled data.
    pub fn new(kind: ModelKind, songs: usize) -> Self {
        ModelConfig {
            kind,
            hidden: 64,
            layers: if kind == ModelKind::Lstm { 2 } else { 5 },
            emb: 64,
            att: 32,
            portrait_dim: 8,
            max_history: 50,
            dropout: 0.5,
            mag: 2.0,
            songs,
            feature_dim: 0,
            n_age: 0,
            n_lang: 0,
            n_genre: 0,
            tile: 32_768,
            seed: 42,
            neighbours: DEFAULT_NEIGHBOURS,
        }
    }
}
