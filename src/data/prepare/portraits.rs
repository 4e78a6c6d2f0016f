//! Step 4 of `prepare`: user portraits from the profiles (when given) and the song labels.

use super::Run;
use crate::data::dataset::Portraits;
use crate::data::interactions::Interactions;
use crate::data::portrait::{self, SongLabels};
use crate::data::{profiles, DataResult};

pub(super) struct PortraitStep {
    pub portraits: Portraits,
    /// Profiles read, and dataset users found among them (`None` without profiles).
    pub profiles_read: Option<usize>,
    pub matched: Option<usize>,
}

impl Run<'_> {
    pub(super) fn portraits(
        &mut self,
        x: &Interactions,
        labels: &SongLabels,
    ) -> DataResult<PortraitStep> {
        let profile_map = match &self.o.profiles {
            Some(p) => {
                (self.log)(&format!("reading profiles {}", p.display()));
                let (m, rep) = profiles::read_profiles(p, self.o.strict)?;
                self.side_input(rep)?;
                Some(m)
            }
            None => None,
        };
        let (portraits, matched) = portrait::build(
            &x.user_ids,
            &x.indptr,
            &x.indices,
            &x.plays,
            labels,
            profile_map.as_ref(),
        );
        if let (Some(m), Some(path)) = (&profile_map, &self.o.profiles) {
            let msg = format!(
                "profiles: {matched} of {} users matched one of {} profile ids",
                x.users(),
                m.len()
            );
            if m.is_empty() {
                self.notes.push(format!(
                    "{msg}: no profile was read from {} (no line in it is one: is it a profile table?), so every age bucket is \"unknown\"",
                    path.display()
                ));
            } else if matched == 0 {
                self.notes.push(format!(
                    "{msg}; the profile ids belong to another id space (e.g. Last.fm-360K vs Taste Profile), so every age bucket is \"unknown\""
                ));
            } else {
                self.notes.push(msg);
            }
        }
        Ok(PortraitStep {
            portraits,
            profiles_read: profile_map.as_ref().map(|m| m.len()),
            matched: profile_map.as_ref().map(|_| matched),
        })
    }
}
