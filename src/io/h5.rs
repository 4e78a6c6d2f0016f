//! Small HDF5 helpers shared by the file formats: one error constructor; ainrnn's own layout for
//! strings (offset-indexed byte arrays, no global heap) and checksummed arrays, used by every
//! file ainrnn writes; and string readers that accept whatever string type h5py or hdf5 wrote,
//! for files of other tools only.

use std::path::Path;

use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};

use crate::error::IoError;

/// An HDF5 failure while doing `what` on `path`.
pub fn h5err(path: &Path, what: &str, e: impl std::fmt::Display) -> IoError {
    IoError::Hdf5 {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

/// Reads any string type h5py or hdf5 may have written (variable or fixed length, ASCII or
/// UTF-8); invalid UTF-8 is replaced, never trusted.
pub fn read_strings(c: &hdf5::Container) -> hdf5::Result<Vec<String>> {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match c.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => Ok(c
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        TypeDescriptor::VarLenAscii => Ok(c
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        TypeDescriptor::FixedAscii(_) => Ok(c
            .read_raw::<FixedAscii<4096>>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        TypeDescriptor::FixedUnicode(_) => Ok(c
            .read_raw::<FixedUnicode<4096>>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        other => Err(hdf5::Error::from(format!(
            "expected strings, found {other}"
        ))),
    }
}

/// One string attribute (scalar or a one-element array) of any string type.
pub fn read_attr_string(loc: &hdf5::Location, name: &str) -> hdf5::Result<String> {
    let a = loc.attr(name)?;
    let mut v = read_strings(&a)?;
    if v.len() != 1 {
        return Err(hdf5::Error::from(format!(
            "expected one string, found {}",
            v.len()
        )));
    }
    Ok(v.remove(0))
}

// ---- Strings without the global heap -------------------------------------------------------
//
// libhdf5 trusts the global heap that variable-length strings live in: a damaged heap address
// kills the process inside the library. ainrnn's own files therefore store a string list as
// two plain arrays, read and checked here before any string is built:
//
//   NAME          u8  [total_bytes]   the UTF-8 bytes of every string, one after the other
//   NAME_offsets  u64 [n + 1]         string i is bytes offsets[i]..offsets[i+1]
//
// and a string attribute as a u8 array attribute. Every array written by `write_array` (the
// two above included) carries a `fnv1a64` attribute, a checksum of its bytes, checked on read:
// damaged data is reported, never used. Files are created with the HDF5 1.10 format
// ([`create_file`]), whose metadata (object headers, B-trees) carries libhdf5's own checksums.

/// Name of the checksum attribute on every array written by [`write_array`].
pub const CHECKSUM_ATTR: &str = "fnv1a64";

/// FNV-1a (64 bit) of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::default();
    h.update(bytes);
    h.finish()
}

/// FNV-1a (64 bit) over bytes given in pieces: the same value as [`fnv1a64`] of their
/// concatenation, without building it.
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Creates (truncates) an HDF5 file in the 1.10 format, which checksums its metadata; without
/// HDF5's file lock (see [`open_file`]).
pub fn create_file(path: &Path) -> hdf5::Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fapl(|p| p.libver_v110().file_locking(false))
        .create(path)
}

/// Opens an HDF5 file read-only, without HDF5's file lock. Outputs are written to a temporary
/// and renamed into place, so readers never see a half-written file; HDF5's lock is an `flock`
/// on a descriptor opened without close-on-exec, which any child process spawned while the file
/// is open inherits and holds for its whole life: a file just written and closed could then
/// refuse to open ("unable to lock file, errno = 11") until that unrelated child exits.
pub fn open_file(path: &Path) -> hdf5::Result<hdf5::File> {
    // HDF5 would report a folder with a multi-line dump of its low-level read.
    if path.is_dir() {
        return Err(hdf5::Error::from(
            "is a folder, not an HDF5 file; give the file's name",
        ));
    }
    hdf5::File::with_options()
        .with_fapl(|p| p.file_locking(false))
        .open(path)
        .map_err(|e| {
            // "file signature not found" says nothing to someone who gave a text file or a
            // checkpoint: name what it is instead.
            match super::sniff::describe(path) {
                Some(kind)
                    if !kind.starts_with("an HDF5") && e.to_string().contains("signature") =>
                {
                    hdf5::Error::from(format!("{kind}, not an HDF5 file"))
                }
                _ => e,
            }
        })
}

/// Writes `v` as dataset `name` (relative to `g`) with `shape` and its checksum attribute.
pub fn write_array<T: hdf5::H5Type + bytemuck::Pod>(
    g: &hdf5::Group,
    name: &str,
    v: &[T],
    shape: &[usize],
) -> hdf5::Result<()> {
    let ds = g.new_dataset::<T>().shape(shape).create(name)?;
    if !v.is_empty() {
        ds.write_raw(v)?;
    }
    ds.new_attr::<u64>()
        .create(CHECKSUM_ATTR)?
        .write_scalar(&fnv1a64(bytemuck::cast_slice(v)))
}

/// Reads dataset `name` written by [`write_array`]: its element type must be `T`, its size at
/// most `max_len` values (a damaged header cannot ask for a huge allocation), and its checksum
/// must match. The error says what is wrong, without the path (callers add path and field).
pub fn read_array_checked<T: hdf5::H5Type + bytemuck::Pod>(
    g: &hdf5::Group,
    name: &str,
    max_len: usize,
) -> Result<Vec<T>, String> {
    let ds = g.dataset(name).map_err(|e| e.to_string())?;
    let want = T::type_descriptor();
    let got = ds
        .dtype()
        .and_then(|d| d.to_descriptor())
        .map_err(|e| e.to_string())?;
    if got != want {
        return Err(format!("has element type {got}, expected {want}"));
    }
    let n = ds.size();
    if n > max_len {
        return Err(format!("has {n} values, more than the {max_len} expected"));
    }
    let v: Vec<T> = if n == 0 {
        Vec::new()
    } else {
        ds.read_raw::<T>().map_err(|e| e.to_string())?
    };
    let stored = ds
        .attr(CHECKSUM_ATTR)
        .and_then(|a| a.read_scalar::<u64>())
        .map_err(|e| format!("no readable {CHECKSUM_ATTR} checksum attribute ({e})"))?;
    if fnv1a64(bytemuck::cast_slice(&v)) != stored {
        return Err("checksum mismatch: the file is damaged".into());
    }
    Ok(v)
}

/// Writes strings as `name` (u8 bytes) and `name_offsets` (u64 `[n + 1]`), both checksummed.
/// Interior NULs are kept (the layout has no terminator).
pub fn write_strings<S: AsRef<str>>(g: &hdf5::Group, name: &str, v: &[S]) -> hdf5::Result<()> {
    let mut bytes = Vec::new();
    let mut offsets = Vec::with_capacity(v.len() + 1);
    offsets.push(0u64);
    for s in v {
        bytes.extend_from_slice(s.as_ref().as_bytes());
        offsets.push(bytes.len() as u64);
    }
    write_array(g, name, &bytes, &[bytes.len()])?;
    write_array(g, &format!("{name}_offsets"), &offsets, &[offsets.len()])
}

/// Reads strings written by [`write_strings`]; never reads a variable-length string. At most
/// `max_n` strings and `max_bytes` bytes; offsets must start at 0, never decrease and end at
/// the byte count; invalid UTF-8 is replaced.
pub fn read_strings_checked(
    g: &hdf5::Group,
    name: &str,
    max_n: usize,
    max_bytes: usize,
) -> Result<Vec<String>, String> {
    let offsets: Vec<u64> = read_array_checked(g, &format!("{name}_offsets"), max_n + 1)
        .map_err(|e| format!("{name}_offsets: {e}"))?;
    let bytes: Vec<u8> = read_array_checked(g, name, max_bytes)?;
    strings_from_offsets(&bytes, &offsets).map_err(|e| format!("{name}_offsets: {e}"))
}

/// Splits `bytes` at `offsets` (`[n + 1]`, from 0 to `bytes.len()`, never decreasing).
pub fn strings_from_offsets(bytes: &[u8], offsets: &[u64]) -> Result<Vec<String>, String> {
    match (offsets.first(), offsets.last()) {
        (Some(0), Some(&end)) if end == bytes.len() as u64 => {}
        _ => {
            return Err(format!(
                "must start at 0 and end at the byte count {} (found {:?}..{:?})",
                bytes.len(),
                offsets.first(),
                offsets.last()
            ))
        }
    }
    let mut out = Vec::with_capacity(offsets.len() - 1);
    for (i, w) in offsets.windows(2).enumerate() {
        if w[0] > w[1] {
            return Err(format!("decrease at string {i} ({} > {})", w[0], w[1]));
        }
        if w[1] > bytes.len() as u64 {
            return Err(format!(
                "string {i} ends at {}, past the {} bytes",
                w[1],
                bytes.len()
            ));
        }
        // In range: w[0] <= w[1] <= bytes.len().
        out.push(String::from_utf8_lossy(&bytes[w[0] as usize..w[1] as usize]).into_owned());
    }
    Ok(out)
}

/// Writes a string attribute as a u8 array attribute (no global heap).
pub fn write_attr_bytes(loc: &hdf5::Location, name: &str, s: &str) -> hdf5::Result<()> {
    let b = s.as_bytes();
    let a = loc.new_attr::<u8>().shape([b.len()]).create(name)?;
    if !b.is_empty() {
        a.write_raw(b)?;
    }
    Ok(())
}

/// The MSD's HDF5 files, for [`other_kind`]: they have no `format` attribute.
pub const MSD_KIND: &str = "msd";

/// What a file of another kind is, when it is one ainrnn knows other than `expected` (a root
/// `format` attribute, or [`MSD_KIND`] for the MSD's files): a feature store given where a
/// dataset is read, and so on. Its version alone would make it look like an older file of the
/// expected kind, and a missing field would not say what the file is.
pub fn other_kind(f: &hdf5::File, expected: &str) -> Option<&'static str> {
    let kinds = [
        ("ainrnn-dataset", "a dataset (written by `ainrnn prepare`)"),
        (
            "ainrnn-features",
            "a feature store (written by `ainrnn features`)",
        ),
        (MSD_KIND, "an MSD file (read by `ainrnn prepare --msd`)"),
    ];
    let format = match read_attr_bytes(f, "format") {
        Ok(format) => format,
        Err(_) if f.link_exists("metadata") && f.link_exists("analysis") => MSD_KIND.to_string(),
        Err(_) => return None,
    };
    kinds
        .iter()
        .find(|(name, _)| *name == format && *name != expected)
        .map(|(_, what)| *what)
}

/// Reads a string attribute written by [`write_attr_bytes`] (at most 1 MiB); refuses any other
/// type, so a variable-length string is never read.
pub fn read_attr_bytes(loc: &hdf5::Location, name: &str) -> hdf5::Result<String> {
    let a = loc.attr(name)?;
    let desc = a.dtype()?.to_descriptor()?;
    if desc != TypeDescriptor::Unsigned(hdf5::types::IntSize::U1) || a.ndim() != 1 {
        return Err(hdf5::Error::from(format!(
            "expected a u8 array (UTF-8 bytes), found {desc} with shape {:?}",
            a.shape()
        )));
    }
    if a.size() > 1 << 20 {
        return Err(hdf5::Error::from(format!("{} bytes: too long", a.size())));
    }
    let b: Vec<u8> = if a.size() == 0 {
        Vec::new()
    } else {
        a.read_raw()?
    };
    Ok(String::from_utf8_lossy(&b).into_owned())
}
