//! Row gather and deterministic segmented scatter-add on the CPU.

use super::{f32s, f32s_mut, tensor, u32s, CpuStorage, CpuTensor};
use crate::backend::{IndexPlan, OpResult};

pub fn gather_rows(table: &CpuTensor, plan: &IndexPlan<CpuStorage>) -> OpResult<CpuTensor> {
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
    let sv = f32s("scatter_add_rows", src)?;
    let order = u32s("scatter_add_rows", &plan.order)?;
    let seg_rows = u32s("scatter_add_rows", &plan.seg_rows)?;
    let seg_ptr = u32s("scatter_add_rows", &plan.seg_ptr)?;
    let d = src.cols();
    let dv = f32s_mut("scatter_add_rows", dst)?;
    // Same summation order as the GPU kernel: positions of a row in ascending order, summed
    // from zero, then added to the row. Whole source rows at a time (contiguous reads).
    let mut acc = vec![0.0f32; d];
    for (s, &row) in seg_rows.iter().enumerate() {
        acc.fill(0.0);
        for &p in &order[seg_ptr[s] as usize..seg_ptr[s + 1] as usize] {
            let src = &sv[p as usize * d..(p as usize + 1) * d];
            acc.iter_mut().zip(src).for_each(|(a, &x)| *a += x);
        }
        let out = &mut dv[row as usize * d..(row as usize + 1) * d];
        out.iter_mut().zip(&acc).for_each(|(o, &a)| *o += a);
    }
    Ok(())
}
