//! Every WGSL file in `shaders/` parses and validates with naga (with the shared prelude in
//! front, as the host compiles it), so a broken shader fails `cargo test` even on a machine
//! without a GPU. The host↔WGSL interface is checked by reflection: for every shader the Rust
//! side declares (`backend::gpu::SHADERS`, `audio::SHADERS`), the `Params` uniform's members
//! (names, types, offsets), every storage binding's name and index, and the override names must
//! match the WGSL. Also checks that the declared list and the directory agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ainrnn::backend::gpu::shader::{Scalar, Shader, PRELUDE, WORKGROUP_SIZE};

fn all_shaders() -> Vec<&'static Shader> {
    ainrnn::backend::gpu::SHADERS
        .iter()
        .chain(ainrnn::audio::SHADERS.iter())
        .copied()
        .collect()
}

/// Parses and validates `prelude + body`; returns the module. Errors name `path`.
fn validate(body: &str, path: &str) -> Result<naga::Module, String> {
    let src = format!("{PRELUDE}\n{body}");
    let module =
        naga::front::wgsl::parse_str(&src).map_err(|e| e.emit_to_string_with_path(&src, path))?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    let info = validator
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(&src, path))?;
    // Resolve the pipeline-override constants as the host does (WG from WORKGROUP_SIZE, the
    // rest at their defaults) and validate the specialised module too.
    let mut constants = naga::back::PipelineConstants::default();
    constants.insert("WG".to_string(), WORKGROUP_SIZE as f64);
    let (resolved, _) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
            .map_err(|e| format!("{path}: overrides: {e}"))?;
    let mut v2 = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    v2.validate(&resolved)
        .map_err(|e| e.emit_to_string_with_path(&src, path))?;
    if module.entry_points.is_empty() {
        return Err(format!("{path}: no entry points"));
    }
    Ok(module)
}

fn scalar_of(module: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<Scalar> {
    match module.types[ty].inner {
        naga::TypeInner::Scalar(naga::Scalar { kind, width: 4 }) => match kind {
            naga::ScalarKind::Uint => Some(Scalar::U32),
            naga::ScalarKind::Sint => Some(Scalar::I32),
            naga::ScalarKind::Float => Some(Scalar::F32),
            _ => None,
        },
        _ => None,
    }
}

/// Differences between the Rust declaration of `s` and its WGSL, one line each.
fn interface_mismatches(s: &Shader, module: &naga::Module) -> Vec<String> {
    let mut errs = Vec::new();
    let mut storage = BTreeMap::new();
    let mut uniform = None;
    for (_, g) in module.global_variables.iter() {
        let Some(rb) = &g.binding else { continue };
        if rb.group != 0 {
            errs.push(format!(
                "{:?}: group {} (only group 0 is bound)",
                g.name, rb.group
            ));
            continue;
        }
        match g.space {
            naga::AddressSpace::Uniform if rb.binding == 0 => uniform = Some(g.ty),
            naga::AddressSpace::Storage { .. } => {
                storage.insert(rb.binding, g.name.clone().unwrap_or_default());
            }
            _ => errs.push(format!(
                "binding {} ({:?}): expected the uniform at 0 and storage elsewhere",
                rb.binding, g.name
            )),
        }
    }
    // Storage bindings: 1..=n, named as the host names them.
    let declared: BTreeMap<u32, String> = s
        .bindings
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u32 + 1, n.to_string()))
        .collect();
    if storage != declared {
        errs.push(format!(
            "storage bindings: WGSL {storage:?}, Rust declares {declared:?}"
        ));
    }
    // The Params uniform against the Rust struct.
    let Some(ty) = uniform else {
        errs.push("no uniform Params at binding 0".into());
        return errs;
    };
    let naga::TypeInner::Struct { members, span } = &module.types[ty].inner else {
        errs.push("the uniform at binding 0 is not a struct".into());
        return errs;
    };
    if *span as usize > s.params.size {
        errs.push(format!(
            "Params is {span} bytes in WGSL but {} bytes in Rust ({})",
            s.params.size, s.params.rust_name
        ));
    }
    let wgsl: Vec<(String, usize, Option<Scalar>)> = members
        .iter()
        .map(|m| {
            (
                m.name.clone().unwrap_or_default(),
                m.offset as usize,
                scalar_of(module, m.ty),
            )
        })
        .filter(|(n, _, _)| !n.starts_with('_'))
        .collect();
    let rust: Vec<(String, usize, Option<Scalar>)> = s
        .params
        .fields
        .iter()
        .filter(|f| !f.name.starts_with('_'))
        .map(|f| (f.name.to_string(), f.offset, Some(f.ty)))
        .collect();
    if wgsl != rust {
        errs.push(format!(
            "Params members (name, offset, type): WGSL {wgsl:?}, Rust {} {rust:?}",
            s.params.rust_name
        ));
    }
    // Overrides: the prelude's WG plus the ones the host may set.
    let overrides: BTreeSet<String> = module
        .overrides
        .iter()
        .filter_map(|(_, o)| o.name.clone())
        .collect();
    let want: BTreeSet<String> = std::iter::once("WG")
        .chain(s.overrides.iter().copied())
        .map(String::from)
        .collect();
    if overrides != want {
        errs.push(format!("overrides: WGSL {overrides:?}, Rust {want:?}"));
    }
    errs
}

#[test]
fn every_shader_validates_with_naga_and_matches_its_rust_interface() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("wgsl") {
            files.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(files.remove("prelude"), "shaders/prelude.wgsl exists");
    let mut failures = Vec::new();
    for s in all_shaders() {
        let path = dir.join(format!("{}.wgsl", s.name));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(on_disk, s.body, "{}: embedded text differs", path.display());
        match validate(s.body, &path.to_string_lossy()) {
            Ok(module) => {
                for e in interface_mismatches(s, &module) {
                    failures.push(format!("{}: {e}", s.name));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} shader problem(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    let declared: BTreeSet<String> = all_shaders().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        files, declared,
        "shaders/ and the declared shaders disagree"
    );
}

/// The validator really rejects bad WGSL (so the test above can fail).
#[test]
fn a_broken_shader_is_rejected() {
    let e = validate(
        "@compute @workgroup_size(64) fn main() { let x: f32 = 1u; }",
        "bad.wgsl",
    )
    .unwrap_err();
    assert!(e.contains("bad.wgsl"), "{e}");
}

/// The interface check really catches swapped members, a moved binding and a missing override.
#[test]
fn an_interface_mismatch_is_reported() {
    let s = ainrnn::backend::gpu::SHADERS
        .iter()
        .find(|s| s.name == "elementwise")
        .expect("elementwise is declared");
    let ok = validate(s.body, "elementwise.wgsl").unwrap();
    assert!(interface_mismatches(s, &ok).is_empty());
    for (from, to, expect) in [
        (
            "    alpha: f32,\n    beta: f32,",
            "    beta: f32,\n    alpha: f32,",
            "Params members",
        ),
        (
            "@group(0) @binding(2) var<storage, read> b:",
            "@group(0) @binding(7) var<storage, read> b:",
            "storage bindings",
        ),
        ("override OP: u32 = 0u;", "const OP: u32 = 0u;", "overrides"),
    ] {
        assert!(s.body.contains(from), "{from}");
        let bad = validate(&s.body.replace(from, to), "elementwise.wgsl").unwrap();
        let errs = interface_mismatches(s, &bad).join("\n");
        assert!(errs.contains(expect), "{from} -> {to}: {errs}");
    }
}

/// Workgroup memory, invocations and storage bindings of every entry point, after the host's
/// overrides resolve, against the limits the device is opened with
/// (`backend::gpu::context::NEED_*`): a kernel over them would fail to compile on an adapter
/// that offers just those limits.
fn limit_excesses(body: &str, path: &str) -> Vec<String> {
    use ainrnn::backend::gpu::context::{
        NEED_INVOCATIONS, NEED_STORAGE_BUFFERS, NEED_WORKGROUP_BYTES,
    };
    let src = format!("{PRELUDE}\n{body}");
    let module = naga::front::wgsl::parse_str(&src).expect("validated above");
    let flags = naga::valid::ValidationFlags::all();
    let caps = naga::valid::Capabilities::default();
    let info = naga::valid::Validator::new(flags, caps)
        .validate(&module)
        .expect("validated above");
    let mut constants = naga::back::PipelineConstants::default();
    constants.insert("WG".to_string(), WORKGROUP_SIZE as f64);
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
            .expect("validated above");
    let mut out = Vec::new();
    for (i, ep) in module.entry_points.iter().enumerate() {
        let uses = info.get_entry_point(i);
        let (mut bytes, mut buffers) = (0u32, 0u32);
        for (h, g) in module.global_variables.iter() {
            if uses[h].is_empty() {
                continue;
            }
            match g.space {
                naga::AddressSpace::WorkGroup => {
                    bytes += module.types[g.ty].inner.size(module.to_ctx())
                }
                naga::AddressSpace::Storage { .. } => buffers += 1,
                _ => {}
            }
        }
        let invocations: u32 = ep.workgroup_size.iter().product();
        for (what, used, limit) in [
            ("workgroup memory (bytes)", bytes, NEED_WORKGROUP_BYTES),
            ("invocations per workgroup", invocations, NEED_INVOCATIONS),
            ("storage buffers", buffers, NEED_STORAGE_BUFFERS),
        ] {
            if used > limit {
                out.push(format!("{path}::{}: {what} {used} > {limit}", ep.name));
            }
        }
    }
    out
}

#[test]
fn every_entry_point_fits_the_limits_the_device_is_opened_with() {
    let excesses: Vec<String> = all_shaders()
        .iter()
        .flat_map(|s| limit_excesses(s.body, s.name))
        .collect();
    assert!(excesses.is_empty(), "{}", excesses.join("\n"));
    // The check can fail: one more float of workgroup memory than the limit is caught.
    let over = format!(
        "var<workgroup> big: array<f32, {}>;\n@compute @workgroup_size(1) fn main() {{ big[0] = 1.0; }}",
        ainrnn::backend::gpu::context::NEED_WORKGROUP_BYTES / 4 + 1
    );
    assert_eq!(limit_excesses(&over, "over").len(), 1);
}
