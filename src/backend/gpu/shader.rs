//! The host↔WGSL interface, declared once on the Rust side and checked against the WGSL by
//! `tests/shaders.rs` (naga reflection), so a mismatch fails a test rather than a run.
//!
//! - Every file of `shaders/` is compiled with [`PRELUDE`] (`shaders/prelude.wgsl`) in front: the
//!   workgroup size `WG`, a pipeline override set from [`WORKGROUP_SIZE`], and the one index
//!   helper `flat_id`.
//! - A [`Shader`] names its file, the Rust type of its `Params` uniform (binding 0, declared with
//!   [`kernel_params!`](crate::kernel_params)), its storage bindings by name (binding `i + 1` is
//!   `bindings[i]`) and its pipeline overrides. Host code binds buffers by those names.
//! - The test checks, for every shader of [`crate::backend::gpu::SHADERS`] and of the modules
//!   above the backend: the `Params` members' names, types and offsets; every `@binding`'s name
//!   and index; the override names.

/// Invocations per workgroup of the one-dimensional kernels (the `WG` override of the prelude).
pub const WORKGROUP_SIZE: u32 = 256;

/// WGSL put in front of every shader's own source.
pub const PRELUDE: &str = include_str!("../../../shaders/prelude.wgsl");

/// A scalar type of a `Params` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    U32,
    I32,
    F32,
}

/// One member of a `Params` struct: name, byte offset, scalar type (arrays of padding are
/// described by their first element; names starting with `_` are padding and not compared).
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub ty: Scalar,
}

/// The layout of a Rust `Params` struct, compared with the WGSL struct by the shader test.
#[derive(Clone, Copy, Debug)]
pub struct ParamsLayout {
    pub rust_name: &'static str,
    pub size: usize,
    pub fields: &'static [Field],
}

/// A kernel parameter block: plain data with a layout the shader test can check.
pub trait KernelParams: bytemuck::Pod {
    const LAYOUT: ParamsLayout;
}

/// Rust types allowed in a `Params` struct.
pub trait WgslScalar {
    const SCALAR: Scalar;
}
impl WgslScalar for u32 {
    const SCALAR: Scalar = Scalar::U32;
}
impl WgslScalar for i32 {
    const SCALAR: Scalar = Scalar::I32;
}
impl WgslScalar for f32 {
    const SCALAR: Scalar = Scalar::F32;
}
impl<const N: usize> WgslScalar for [u32; N] {
    const SCALAR: Scalar = Scalar::U32;
}

/// Declares a `#[repr(C)]` kernel parameter struct and its [`KernelParams`] layout. Fields are
/// `u32`, `i32`, `f32` or `[u32; N]` padding (named `_…`).
#[macro_export]
macro_rules! kernel_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $fvis:vis $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name { $($(#[$fm])* $fvis $f: $t),* }

        impl $crate::backend::gpu::shader::KernelParams for $name {
            const LAYOUT: $crate::backend::gpu::shader::ParamsLayout =
                $crate::backend::gpu::shader::ParamsLayout {
                    rust_name: stringify!($name),
                    size: std::mem::size_of::<$name>(),
                    fields: &[$($crate::backend::gpu::shader::Field {
                        name: stringify!($f),
                        offset: std::mem::offset_of!($name, $f),
                        ty: <$t as $crate::backend::gpu::shader::WgslScalar>::SCALAR,
                    }),*],
                };
        }
    };
}

/// One WGSL file of `shaders/` and its interface.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    /// File stem in `shaders/`.
    pub name: &'static str,
    /// The file's text (without the prelude).
    pub body: &'static str,
    /// Layout of the `Params` uniform at binding 0.
    pub params: ParamsLayout,
    /// Storage bindings in order: binding `i + 1` is `bindings[i]`.
    pub bindings: &'static [&'static str],
    /// Pipeline overrides the host may set (besides the prelude's `WG`).
    pub overrides: &'static [&'static str],
}

impl Shader {
    /// The source compiled for this shader: the prelude, then the file.
    pub fn source(&self) -> String {
        format!("{PRELUDE}\n{}", self.body)
    }

    /// The binding index of a storage buffer named in the WGSL.
    pub fn binding(&self, name: &str) -> Option<u32> {
        self.bindings
            .iter()
            .position(|&b| b == name)
            .map(|i| i as u32 + 1)
    }
}

impl PartialEq for Shader {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Shader {}
impl std::hash::Hash for Shader {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name.hash(h)
    }
}

/// Declares a [`Shader`] constant for `shaders/<name>.wgsl`.
#[macro_export]
macro_rules! wgsl_shader {
    ($name:literal, $params:ty, bindings: [$($b:literal),* $(,)?] $(, overrides: [$($o:literal),* $(,)?])? $(,)?) => {
        $crate::backend::gpu::shader::Shader {
            name: $name,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $name, ".wgsl")),
            params: <$params as $crate::backend::gpu::shader::KernelParams>::LAYOUT,
            bindings: &[$($b),*],
            overrides: &[$($($o),*)?],
        }
    };
}
