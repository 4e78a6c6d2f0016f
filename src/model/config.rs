//! What fixes a model's shape: its kind and sizes (stored in checkpoints).

use serde::{Deserialize, Serialize};

use crate::error::OpError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Ainrnn,
    Indrnn,
    /// Residual IndRNN (Li et al. 2019): the baseline whose shortcuts AINRNN replaces with dense
    /// connections; last state.
    Resindrnn,
    Lstm,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ainrnn => "ainrnn",
            ModelKind::Indrnn => "indrnn",
            ModelKind::Resindrnn => "resindrnn",
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
            "resindrnn" => Ok(ModelKind::Resindrnn),
            "lstm" => Ok(ModelKind::Lstm),
            o => Err(format!(
                "unknown model {o:?} (expected ainrnn, indrnn, resindrnn or lstm)"
            )),
        }
    }
}

/// How the recurrent layers are stacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// Every layer sees the input and all earlier layers' outputs (AINRNN).
    Dense,
    /// Each layer's output is added to its input (residual IndRNN, Li et al. 2019).
    Residual,
    /// Each layer's output is added to its input scaled by a learned per-unit gate, starting at
    /// 1 (residual shortcuts that learn how much of the stream to pass on; 0 is a plain stack).
    Gated,
    /// Each layer sees the previous layer's output only (IndRNN, LSTM).
    Plain,
}

/// How the recurrent states over the history become one user vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolingKind {
    /// Attention whose weights add the play counts (AINRNN).
    PlaysAttention,
    /// Attention without the play counts.
    Attention,
    /// The last state.
    Last,
    /// The mean over the history.
    Mean,
}

macro_rules! named_enum {
    ($t:ty, $what:literal, $($v:ident = $n:literal),+) => {
        impl $t {
            pub fn name(self) -> &'static str {
                match self { $(Self::$v => $n),+ }
            }
            pub const ALL: &'static [$t] = &[$(Self::$v),+];
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($n => Ok(Self::$v),)+
                    o => Err(format!(
                        concat!("unknown ", $what, " {:?} (expected {})"),
                        o,
                        [$($n),+].join(", ")
                    )),
                }
            }
        }
    };
}
named_enum!(
    Connection,
    "connection",
    Dense = "dense",
    Residual = "residual",
    Gated = "gated",
    Plain = "plain"
);
named_enum!(
    PoolingKind,
    "pooling",
    PlaysAttention = "plays-attention",
    Attention = "attention",
    Last = "last",
    Mean = "mean"
);

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
    /// Layer stacking; `None`: the kind's own ([`ModelConfig::connection`]).
    #[serde(default)]
    pub connection: Option<Connection>,
    /// History pooling; `None`: the kind's own ([`ModelConfig::pooling`]).
    #[serde(default)]
    pub pooling: Option<PoolingKind>,
    /// Whether the item-neighbourhood term weighs each history song by a learned per-song
    /// weight (checkpoints from before it existed have none).
    #[serde(default)]
    pub song_weights: bool,
    /// Whether the term weighs each (history song, neighbour) pair of the lists by a learned
    /// weight (checkpoints from before it existed have none).
    #[serde(default)]
    pub pair_weights: bool,
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
            connection: None,
            pooling: None,
            song_weights: false,
            pair_weights: false,
        }
    }

    /// The layer stacking in effect: AINRNN's dense connections, residual IndRNN's shortcuts,
    /// else a plain stack.
    pub fn connection(&self) -> Connection {
        self.connection.unwrap_or(match self.kind {
            ModelKind::Ainrnn => Connection::Dense,
            ModelKind::Resindrnn => Connection::Residual,
            _ => Connection::Plain,
        })
    }

    /// The pooling in effect: AINRNN's attention with play counts, else the last state.
    pub fn pooling(&self) -> PoolingKind {
        self.pooling.unwrap_or(match self.kind {
            ModelKind::Ainrnn => PoolingKind::PlaysAttention,
            _ => PoolingKind::Last,
        })
    }

    /// Refuses sizes no model can be built with (a checkpoint header or a library caller may
    /// carry them; the CLI refuses them earlier, by flag).
    pub fn validate(&self) -> Result<(), OpError> {
        let bad = |detail: String| {
            Err(OpError::Invalid {
                op: "model config",
                detail,
            })
        };
        let sizes = [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("emb", self.emb),
            ("max_history", self.max_history),
            ("songs", self.songs),
            ("tile", self.tile),
        ];
        for (name, v) in sizes {
            if v == 0 {
                return bad(format!("{name} is 0; it must be at least 1"));
            }
        }
        let attention = matches!(
            self.pooling(),
            PoolingKind::PlaysAttention | PoolingKind::Attention
        );
        if attention && self.att == 0 {
            return bad(format!(
                "att is 0; pooling {} needs at least 1",
                self.pooling().name()
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is outside [0, 1)", self.dropout));
        }
        // The LSTM baseline is built as a plain stack read at its last state only.
        if self.kind == ModelKind::Lstm
            && (self.connection() != Connection::Plain || self.pooling() != PoolingKind::Last)
        {
            return bad(format!(
                "lstm is built with connection plain and pooling last only, not connection {} \
                 and pooling {}",
                self.connection().name(),
                self.pooling().name()
            ));
        }
        if !(self.mag.is_finite() && self.mag > 0.0) {
            return bad(format!("mag {} must be finite and > 0", self.mag));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// About how many bytes of memory the model takes to train with `batch` users a step: its
    /// parameters four times over (values, gradients, Adam's two moments) and one step's
    /// largest activations (the history's gathered embeddings, the recurrent layers' caches, a
    /// catalogue tile's logits and their gradient). A floor, not a bound, on either backend: it
    /// exists so that a size no machine could train (a `--hidden` of 100,000) is refused with
    /// the figure before the first allocation aborts the process or fails on the device. The
    /// neighbour lists are left out: how long they are depends on the data (up to `neighbours`
    /// a song, 8 bytes an entry; far fewer where few users listen), and counting them full
    /// made the figure exceed what a sparse catalogue's training took.
    pub fn approx_bytes(&self, batch: usize) -> f64 {
        // In f64: absurd sizes must give a large number, not an overflow.
        let f = |x: usize| x as f64;
        let (h, e, songs, layers, t) = (
            f(self.hidden),
            f(self.emb),
            f(self.songs),
            self.layers,
            f(self.max_history),
        );
        let lstm = self.kind == ModelKind::Lstm;
        let gates = if lstm { 4.0 } else { 1.0 };
        let dense = self.connection() == Connection::Dense;
        let input = e + f(self.feature_dim) + 1.0;
        let layer_params: f64 = (0..layers)
            .map(|l| {
                let width = match (dense, l) {
                    (true, l) => input + f(l) * h,
                    (false, 0) => input,
                    (false, _) => h,
                };
                gates * (width * h + if lstm { h * h } else { h } + h)
            })
            .sum();
        let pairs = if self.pair_weights {
            f(self.neighbours)
        } else {
            0.0
        };
        let params = songs * (e + 2.0 + pairs)
            + layer_params
            + f(self.feature_dim) * e
            + (h + f(self.att)) * (e + h)
            + f(self.n_age + self.n_lang + self.n_genre) * e;
        let b = f(batch.max(1));
        let activations =
            b * t * (input + 6.0 * gates * h * f(layers)) + 3.0 * b * songs.min(f(self.tile));
        16.0 * params + 4.0 * activations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The estimate is a floor near what is measured, and absurd sizes give absurd figures.
    #[test]
    fn approx_bytes_is_near_the_measured_footprint() {
        // `bench train` at the paper's scale (359,687 songs, song table 128, hidden 32, 5 layers,
        // 200 neighbours, no pair weights at that size, batch 32): 1,376-1,552 MB resident on
        // the CPU backend, 575 MB of it the full neighbour lists the floor leaves out.
        let mut c = ModelConfig::new(ModelKind::Ainrnn, 359_687);
        (c.emb, c.hidden, c.layers, c.neighbours, c.pair_weights) = (128, 32, 5, 200, false);
        c.max_history = 25;
        let gb = c.approx_bytes(32) / 1e9;
        assert!((0.7..1.376).contains(&gb), "{gb} GB");
        c.hidden = 100_000;
        assert!(c.approx_bytes(1) > 1e11);
        // No overflow at the type's limit: a huge figure, refused like any other.
        c.hidden = usize::MAX;
        assert!(c.approx_bytes(usize::MAX) > 1e30);
    }

    #[test]
    fn validate_refuses_what_no_model_can_be_built_with() {
        for kind in [
            ModelKind::Ainrnn,
            ModelKind::Indrnn,
            ModelKind::Resindrnn,
            ModelKind::Lstm,
        ] {
            assert!(ModelConfig::new(kind, 10).validate().is_ok());
        }
        // Every connection and pooling is built for the IndRNN kinds.
        for kind in [ModelKind::Ainrnn, ModelKind::Indrnn, ModelKind::Resindrnn] {
            for &c in Connection::ALL {
                for &p in PoolingKind::ALL {
                    let cfg = ModelConfig {
                        connection: Some(c),
                        pooling: Some(p),
                        ..ModelConfig::new(kind, 10)
                    };
                    assert!(cfg.validate().is_ok(), "{kind:?} {c:?} {p:?}");
                }
            }
        }
        let lstm = ModelConfig::new(ModelKind::Lstm, 10);
        let base = ModelConfig::new(ModelKind::Ainrnn, 10);
        let cases: Vec<(ModelConfig, &str)> = vec![
            (
                ModelConfig {
                    layers: 0,
                    ..base.clone()
                },
                "layers is 0",
            ),
            (
                ModelConfig {
                    hidden: 0,
                    ..base.clone()
                },
                "hidden is 0",
            ),
            (
                ModelConfig {
                    songs: 0,
                    ..base.clone()
                },
                "songs is 0",
            ),
            (
                ModelConfig {
                    att: 0,
                    ..base.clone()
                },
                "att is 0",
            ),
            (
                ModelConfig {
                    dropout: 1.0,
                    ..base.clone()
                },
                "dropout 1",
            ),
            (
                ModelConfig {
                    dropout: f32::NAN,
                    ..base.clone()
                },
                "dropout NaN",
            ),
            (
                ModelConfig {
                    mag: 0.0,
                    ..base.clone()
                },
                "mag 0",
            ),
            (
                ModelConfig {
                    att: 0,
                    kind: ModelKind::Indrnn,
                    pooling: Some(PoolingKind::Attention),
                    ..base.clone()
                },
                "att is 0; pooling attention",
            ),
            (
                ModelConfig {
                    connection: Some(Connection::Dense),
                    ..lstm.clone()
                },
                "lstm is built with connection plain and pooling last only, not connection dense",
            ),
            (
                ModelConfig {
                    pooling: Some(PoolingKind::Mean),
                    ..lstm.clone()
                },
                "pooling mean",
            ),
        ];
        for (cfg, want) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should say {want:?}");
        }
    }

    #[test]
    fn connection_and_pooling_default_to_the_kinds_own() {
        let a = ModelConfig::new(ModelKind::Ainrnn, 10);
        assert_eq!(
            (a.connection(), a.pooling()),
            (Connection::Dense, PoolingKind::PlaysAttention)
        );
        let i = ModelConfig::new(ModelKind::Indrnn, 10);
        assert_eq!(
            (i.connection(), i.pooling()),
            (Connection::Plain, PoolingKind::Last)
        );
        let r = ModelConfig::new(ModelKind::Resindrnn, 10);
        assert_eq!(
            (r.connection(), r.pooling()),
            (Connection::Residual, PoolingKind::Last)
        );
        assert_eq!("ResIndRNN".parse::<ModelKind>(), Ok(ModelKind::Resindrnn));
        for c in Connection::ALL {
            assert_eq!(c.name().parse::<Connection>(), Ok(*c));
        }
        for p in PoolingKind::ALL {
            assert_eq!(p.name().parse::<PoolingKind>(), Ok(*p));
        }
        let e = "dens".parse::<Connection>().unwrap_err();
        assert!(e.contains("dense, residual, gated, plain"), "{e}");
    }
}
