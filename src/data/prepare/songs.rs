//! Step 3 of `prepare`: song knowledge for the kept songs (MSD HDF5, subset CSV, artist terms
//! and MusicBrainz tags), turned into per-song metadata, portrait labels and raw MSD rows.

use std::collections::{HashMap, HashSet};

use super::Run;
use crate::data::catalog::Catalog;
use crate::data::dataset::SongMeta;
use crate::data::interactions::Interactions;
use crate::data::portrait::SongLabels;
use crate::data::{metadata, msd, terms, vectors, DataResult};

/// Per kept song (dense index): what the song knowledge says.
pub(super) struct SongFacts {
    pub meta: Vec<SongMeta>,
    pub labels: SongLabels,
    /// Raw MSD vector rows ([`vectors::msd_row`]); `None` without an MSD record.
    pub msd_rows: Vec<Option<Vec<f64>>>,
    pub with_record: usize,
    pub with_segments: usize,
}

impl Run<'_> {
    /// Reads the MSD inputs and artist tables the options name, for the songs in `wanted`.
    fn read_catalog(&mut self, wanted: &HashSet<&str>) -> DataResult<Catalog> {
        let o = self.o;
        let mut catalog = Catalog::new();
        if let Some(m) = &o.msd {
            (self.log)(&format!("reading MSD HDF5 {}", m.display()));
            let (songs, rep) = msd::read_msd(m, &|id| wanted.contains(id), o.strict)?;
            self.side_input(rep)?;
            songs.into_iter().for_each(|s| catalog.add_msd(s));
        }
        if let Some(csv) = &o.metadata {
            (self.log)(&format!("reading MSD subset CSV {}", csv.display()));
            let (songs, rep) = metadata::read_subset_csv(csv, o.strict)?;
            self.side_input(rep)?;
            songs
                .into_iter()
                .filter(|s| wanted.contains(s.song_id.as_str()))
                .for_each(|s| catalog.add_subset(s));
        }
        if let Some(p) = o.artist_terms_file() {
            (self.log)(&format!("reading artist terms {}", p.display()));
            let (map, rep) = metadata::read_artist_terms(&p, "artist terms", o.strict)?;
            self.side_input(rep)?;
            catalog.add_artist_terms(map);
        }
        if let Some(p) = o.artist_mbtags_file() {
            (self.log)(&format!("reading artist MusicBrainz tags {}", p.display()));
            let (map, rep) = metadata::read_artist_terms(&p, "artist mbtags", o.strict)?;
            self.side_input(rep)?;
            catalog.add_artist_mbtags(map);
        }
        Ok(catalog)
    }

    /// The facts of every kept song. HetRec items are artists: they get only a name.
    pub(super) fn song_facts(
        &mut self,
        x: &Interactions,
        hetrec_names: Option<&HashMap<String, String>>,
    ) -> DataResult<SongFacts> {
        let wanted: HashSet<&str> = x.song_ids.iter().map(String::as_str).collect();
        let catalog = self.read_catalog(&wanted)?;
        let songs = x.songs();
        let mut f = SongFacts {
            meta: Vec::with_capacity(songs),
            labels: SongLabels {
                genre: Vec::with_capacity(songs),
                language: Vec::with_capacity(songs),
            },
            msd_rows: Vec::with_capacity(songs),
            with_record: 0,
            with_segments: 0,
        };
        for id in &x.song_ids {
            if let Some(names) = hetrec_names {
                // HetRec items are artists: the name is both title and artist; its writing system
                // is the only language evidence.
                let name = names.get(id).cloned().unwrap_or_default();
                f.labels
                    .language
                    .push(terms::song_language("", &name, std::iter::empty(), ""));
                f.labels.genre.push(None);
                f.meta.push(SongMeta {
                    title: name.clone(),
                    artist: name,
                    ..SongMeta::unknown()
                });
                f.msd_rows.push(None);
                continue;
            }
            let facts = catalog.facts(id);
            if let Some(r) = facts.record {
                f.with_record += 1;
                f.with_segments += r.segments.is_some() as usize;
                f.msd_rows.push(Some(vectors::msd_row(r)));
            } else {
                f.msd_rows.push(None);
            }
            f.labels.genre.push(facts.genre);
            f.labels.language.push(facts.language);
            f.meta.push(facts.meta);
        }
        if (self.o.msd.is_some() || self.o.metadata.is_some()) && f.with_record == 0 {
            self.notes.push(format!(
                "none of the {songs} songs was found in the MSD inputs (joined by song_id)"
            ));
        }
        Ok(f)
    }
}
