//! Small HDF5 helpers shared by the file formats: one error constructor and string readers that
//! accept whatever string type h5py or hdf5 wrote.

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
