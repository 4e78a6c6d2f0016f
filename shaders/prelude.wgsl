// Prelude: put in front of every shader of this folder by the host (src/backend/gpu/shader.rs)
// and by tests/shaders.rs. Not a shader of its own.
//
// WG: invocations per workgroup of the one-dimensional kernels, set by the host from
// WORKGROUP_SIZE (a pipeline override; the default here is the same value).
override WG: u32 = 256u;

// The flat invocation index of a one-dimensional launch. The host splits large grids over x
// and y (GpuContext::grid), so workgroup w is wid.x + wid.y * nwg.x.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}
