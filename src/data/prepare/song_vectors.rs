//! Step 5 of `prepare`: song vectors from the MSD rows and, when given, the audio stage's
//! `features.h5`, z-scored together.

use super::Run;
use crate::data::dataset::{SongMeta, SongVectors};
use crate::data::features;
use crate::data::interactions::Interactions;
use crate::data::vectors::{self, Block};
use crate::data::DataResult;
use crate::io::features_h5::read_song_table;

pub(super) struct VectorStep {
    pub vectors: Option<SongVectors>,
    /// Audio vectors read, and dataset songs that got one (`None` without `--features`).
    pub read: Option<usize>,
    pub joined: Option<usize>,
}

impl Run<'_> {
    pub(super) fn song_vectors(
        &mut self,
        x: &Interactions,
        meta: &[SongMeta],
        msd_rows: Vec<Option<Vec<f64>>>,
    ) -> DataResult<VectorStep> {
        let mut blocks = vec![Block {
            tag: "msd",
            names: vectors::msd_names(),
            rows: msd_rows,
        }];
        let (mut audio_read, mut audio_joined) = (None, None);
        if let Some(fp) = &self.o.features {
            (self.log)(&format!("reading audio features {}", fp.display()));
            let a = read_song_table(fp)?;
            let track_ids: Vec<String> = meta.iter().map(|m| m.track_id.clone()).collect();
            let join = features::join(&a, &x.song_ids, &track_ids);
            let joined = join.iter().filter(|j| j.is_some()).count();
            audio_read = Some(a.ids.len());
            audio_joined = Some(joined);
            self.notes.push(format!(
                "audio features: {joined} of {} songs joined one of {} vectors (by song id or track id)",
                x.songs(),
                a.ids.len()
            ));
            blocks.push(Block {
                tag: "audio",
                names: a.names.clone(),
                rows: join
                    .iter()
                    .map(|j| j.map(|i| a.row(i).iter().map(|&v| v as f64).collect()))
                    .collect(),
            });
        }
        let a = vectors::assemble_report(x.songs(), blocks);
        if !a.dropped_constant.is_empty() {
            let n = a.dropped_constant.len();
            self.notes.push(format!(
                "song vectors: {n} column{} dropped, one value for every song that has one ({}): z-scored they would be 0 for every song",
                if n == 1 { "" } else { "s" },
                abbreviate(&a.dropped_constant)
            ));
        }
        Ok(VectorStep {
            vectors: a.vectors,
            read: audio_read,
            joined: audio_joined,
        })
    }
}

/// At most four names, then how many more.
fn abbreviate(names: &[String]) -> String {
    let mut s = names.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 4 {
        s.push_str(&format!(", … {} more", names.len() - 4));
    }
    s
}
