//! Step 1 of `prepare`: the listening data (triplets or HetRec), with HetRec's artist names.

use std::collections::HashMap;

use super::{Input, ReadSummary, Run};
use crate::data::interactions::Interactions;
use crate::data::{hetrec, triplets, DataError, DataResult};

/// What step 1 found besides the interactions.
pub(super) struct InputData {
    /// The dataset's `source` label.
    pub source: String,
    /// HetRec artist id → name, when the input is HetRec and `artists.dat` was found.
    pub hetrec_names: Option<HashMap<String, String>>,
    pub read: ReadSummary,
}

impl Run<'_> {
    /// Reads the interactions; fails when the input has none.
    pub(super) fn read_interactions(&mut self) -> DataResult<(Interactions, InputData)> {
        let o = self.o;
        let (raw, source, hetrec_names) = match &o.input {
            Input::Triplets(p) => {
                (self.log)(&format!("reading triplets {}", p.display()));
                let t = triplets::read_triplets(p, o.strict)?;
                self.inputs.push(t.report);
                let source = match t.synthetic {
                    // The header starts with "synthetic": it is the source label as it stands.
                    Some(h) => {
                        self.notes.push(format!("the input is SYNTHETIC data: {h}"));
                        h
                    }
                    None => "taste-profile".to_string(),
                };
                (t.interactions, source, None)
            }
            Input::Hetrec { user_artists, .. } => {
                (self.log)(&format!("reading HetRec {}", user_artists.display()));
                let h = hetrec::read_user_artists(user_artists, o.strict)?;
                self.inputs.push(h.report);
                let names = match o.artists_file() {
                    Some(a) => {
                        let (names, rep) = hetrec::read_artists(&a, o.strict)?;
                        if let Some(e) = rep.nothing_accepted() {
                            (self.log)(&rep.render_problems());
                            return Err(e);
                        }
                        self.inputs.push(rep);
                        Some(names)
                    }
                    None => {
                        self.notes.push(
                            "no artists.dat beside user_artists.dat and no --artists: artist names are empty"
                                .into(),
                        );
                        None
                    }
                };
                (h.interactions, "hetrec-lastfm-2k".to_string(), names)
            }
        };
        let input_path = match &o.input {
            Input::Triplets(p) => p.clone(),
            Input::Hetrec { user_artists, .. } => user_artists.clone(),
        };
        for r in &self.inputs {
            (self.log)(&r.render_problems());
        }
        if raw.is_empty() {
            // Every line rejected: say why the first was.
            if let Some(e) = self.inputs[0].nothing_accepted() {
                return Err(e);
            }
            return Err(DataError::Empty(format!(
                "{}: no valid interactions ({} lines read, {} rejected)",
                input_path.display(),
                self.inputs[0].lines,
                self.inputs[0].malformed
            )));
        }
        let read = ReadSummary {
            users: raw.users(),
            songs: raw.songs(),
            interactions: raw.len(),
            plays: raw.total_plays().round() as u64,
            duplicates_merged: raw.duplicates_merged,
        };
        if raw.duplicates_merged > 0 {
            self.notes.push(format!(
                "{} repeated (user, song) records were merged into their first occurrence (plays summed)",
                raw.duplicates_merged
            ));
        }
        use crate::text::count;
        (self.log)(&format!(
            "read {}, {}, {}, {}",
            count(read.users as u64, "user"),
            count(read.songs as u64, "song"),
            count(read.interactions as u64, "interaction"),
            count(read.plays, "play")
        ));
        let input = InputData {
            source,
            hetrec_names,
            read,
        };
        Ok((raw, input))
    }
}
