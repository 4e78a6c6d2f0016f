//! Row gather and deterministic segmented scatter-add on the CPU.

use super::{f32s, f32s_mut, tensor, u32s, CpuStorage, CpuTensor};
use crate::backend::{check, IndexPlan, OpResult};

pub fn gather_rows(table: &CpuTensor, plan: &IndexPlan<CpuStorage>) -> OpResult<CpuTensor> {
    check::gather(table, plan)?;
    let tv = f32s("gather_rows", table)?;
    let idx = u32s("gather_rows", &plan.idx)?;
    let d = table.cols();
    let mut out = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        out.extend_from_slice(&tv[i as usize * d..(i as usize + 1) * d]);
    }
    Ok(tensor(vec![idx.len(), d], out))
}

pub fn scatter_add_rows(
    dst: &mut CpuTensor,
    src: &CpuTensor,
    plan: &IndexPlan<CpuStorage>,
) -> OpResult<()> {
    check::scatter(dst, src, plan)?;
    let sv = f32s("scatter_add_rows", src)?;
    let order = u32s("scatter_add_rows", &plan.order)?;
    let seg_rows = u32s("scatter_add_rows", &plan.seg_rows)?;
    let seg_ptr = u32s("scatter_add_rows", &plan.seg_ptr)?;
    let d = src.cols();
    let dv = f32s_mut("scatter_add_rows", dst)?;
    // Same summation order as the GPU kernel: positions of a row in ascending order.
    for (s, &row) in seg_rows.iter().enumerate() {
        let out = &mut dv[row as usize * d..(row as usize + 1) * d];
        for c in 0..d {
            let mut acc = 0.0f32;
            for &p in &order[seg_ptr[s] as usize..seg_ptr[s + 1] as usize] {
                acc += sv[p as usize * d + c];
            }
            out[c] += acc;
        }
    }
    Ok(())
}
