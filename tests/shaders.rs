//! Every WGSL file in `shaders/` parses and validates with naga, so a broken shader fails
//! `cargo test` even on a machine without a GPU. Also checks that the embedded shader list and
//! the directory agree, so no file is silently left out of this test or of the binary.

use std::collections::BTreeSet;
use std::path::Path;

use ainrnn::backend::gpu::pipeline::Shader;

fn validate(path: &Path) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let module = naga::front::wgsl::parse_str(&src)
        .map_err(|e| e.emit_to_string_with_path(&src, path.to_string_lossy().as_ref()))?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    let info = validator
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(&src, path.to_string_lossy().as_ref()))?;
    // Resolve the pipeline-override constants with their defaults, as a pipeline without
    // explicit constants would, and validate the specialised module too.
    let (resolved, _) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        None,
        &naga::back::PipelineConstants::default(),
    )
    .map_err(|e| format!("{}: overrides: {e}", path.display()))?;
    let mut v2 = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    v2.validate(&resolved)
        .map_err(|e| e.emit_to_string_with_path(&src, path.to_string_lossy().as_ref()))?;
    if module.entry_points.is_empty() {
        return Err(format!("{}: no entry points", path.display()));
    }
    Ok(())
}

#[test]
fn every_shader_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files = BTreeSet::new();
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        files.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        if let Err(e) = validate(&path) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} shader(s) failed naga validation:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    let embedded: BTreeSet<String> = Shader::ALL.iter().map(|s| s.name().to_string()).collect();
    assert_eq!(files, embedded, "shaders/ and Shader::ALL disagree");
}

#[test]
fn embedded_sources_match_files() {
    for s in Shader::ALL {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("shaders")
            .join(format!("{}.wgsl", s.name()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            s.source(),
            "{}",
            path.display()
        );
    }
}

/// The validator really rejects bad WGSL (so the test above can fail).
#[test]
fn a_broken_shader_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.wgsl");
    std::fs::write(
        &p,
        "@compute @workgroup_size(64) fn main() { let x: f32 = 1u; }",
    )
    .unwrap();
    let e = validate(&p).unwrap_err();
    assert!(e.contains("bad.wgsl"), "{e}");
}
