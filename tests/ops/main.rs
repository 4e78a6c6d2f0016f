//! One op test suite, run on both backends. Every test body is a generic function over
//! `Backend`; `backend_tests!` (tests/common) emits `cpu::<name>` and `gpu::<name>` for each. Each body checks the
//! backend against an independent f64 oracle written here (and, through that, GPU against CPU),
//! on seeded random inputs whose sizes include 1, non-multiples of the workgroup sizes and
//! large values. Backward ops are also checked against central finite differences.

// Oracles index explicitly: clearer next to the formulas they implement.
#![allow(clippy::needless_range_loop)]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod elementwise;
mod embed;
mod matmul;
mod model;
mod reduce;
mod runtime;
mod softmax;

backend_tests! {
    matmul::random_shapes => matmul_random_shapes,
    matmul::transposes_and_batches => matmul_transposes_and_batches,
    matmul::accumulate_into => matmul_accumulate_into,
    matmul::with_bias => matmul_with_bias,
    matmul::large => matmul_large,
    matmul::big_tiles => matmul_big_tiles,
    matmul::catalogue_shapes => matmul_catalogue_shapes,
    matmul::backward_finite_difference => matmul_backward_finite_difference,
    matmul::shape_errors => matmul_shape_errors,
    elementwise::binary_broadcast => elementwise_binary_broadcast,
    elementwise::unary_ops => elementwise_unary_ops,
    elementwise::affine_axpy => elementwise_affine_axpy,
    elementwise::copy_on_write => elementwise_copy_on_write,
    elementwise::relu_backward_finite_difference => elementwise_relu_backward_finite_difference,
    elementwise::grid_beyond_one_dimension => elementwise_grid_beyond_one_dimension,
    reduce::rows_all_lengths => reduce_rows_all_lengths,
    reduce::cols => reduce_cols,
    softmax::forward_all_lengths => softmax_forward_all_lengths,
    softmax::catalogue_row => softmax_catalogue_row,
    softmax::masked_rows => softmax_masked_rows,
    softmax::backward_finite_difference => softmax_backward_finite_difference,
    softmax::cross_entropy_matches_oracle => softmax_cross_entropy_matches_oracle,
    softmax::cross_entropy_finite_difference => softmax_cross_entropy_finite_difference,
    softmax::target_errors => softmax_target_errors,
    embed::gather_scatter => embed_gather_scatter,
    embed::scatter_finite_difference => embed_scatter_finite_difference,
    embed::index_errors => embed_index_errors,
    model::indrnn_forward => model_indrnn_forward,
    model::indrnn_backward_finite_difference => model_indrnn_backward_finite_difference,
    model::indrnn_with_dropout => model_indrnn_with_dropout,
    model::lstm_forward => model_lstm_forward,
    model::lstm_backward_finite_difference => model_lstm_backward_finite_difference,
    model::elementwise_helpers => model_elementwise_helpers,
    model::dropout_masks => model_dropout_masks,
    model::optimizer => model_optimizer,
    model::optimizer_fused => model_optimizer_fused,
    model::optimizer_many => model_optimizer_many,
    model::optimizer_contract => model_optimizer_contract,
    model::table_fused_step => model_table_fused_step,
    model::topk_and_masking => model_topk_and_masking,
    model::group_masking => model_group_masking,
    model::cross_entropy_tiles => model_cross_entropy_tiles,
    model::csr_axpy_and_row_dot => model_csr_axpy_and_row_dot,
    model::csr_contract => model_csr_contract,
    model::topk_contract => model_topk_contract,
    model::neighbour_tiles => model_neighbour_tiles,
    model::neighbour_contract => model_neighbour_contract,
    model::neighbour_weighted_tiles => model_neighbour_weighted_tiles,
    model::neighbour_pair_tiles => model_neighbour_pair_tiles,
    model::neighbour_pair_scale_lists => model_neighbour_pair_scale_lists,
    runtime::pooled_buffers_are_reused_cleanly => runtime_pooled_buffers_are_reused_cleanly,
    runtime::round_trip_and_write => runtime_round_trip_and_write,
    runtime::to_host_reads_many_tensors => runtime_to_host_reads_many_tensors,
    runtime::read_later_gives_the_values_when_started => runtime_read_later_gives_the_values_when_started,
}

/// Every kernel of `matmul.wgsl` forced onto every product of the matmul bodies: the default
/// choice runs each kernel only on some shapes (`matmul128p` on none).
#[test]
fn gpu_matmul_every_kernel_on_every_shape() {
    use ainrnn::backend::gpu::MatmulKernel;
    let Some(g) = common::gpu() else { return };
    for k in MatmulKernel::FORCED {
        eprintln!("matmul kernel {k:?}");
        let g = g.with_matmul_kernel(k);
        matmul::random_shapes(&g);
        matmul::transposes_and_batches(&g);
        matmul::accumulate_into(&g);
        matmul::with_bias(&g);
        matmul::big_tiles(&g);
        matmul::catalogue_shapes(&g);
    }
}

/// Every op the CPU accepts on an empty shape (no rows, no columns, no index, k = 0), run on
/// both backends: the same result shape and the same values to the bit (NaN as NaN), or an
/// error on both. Under the tests' poison a GPU kernel that writes nothing in such a case
/// leaves NaN where the CPU has a value.
#[test]
fn gpu_matches_cpu_on_empty_shapes() {
    use ainrnn::backend::cpu::CpuBackend;
    use ainrnn::backend::{BinaryOp, ReduceOp, UnaryOp};
    let Some(g) = common::gpu() else { return };
    type Out = Result<(Vec<usize>, Vec<f32>), String>;
    fn cases<B: ainrnn::backend::Backend>(be: &B) -> Vec<(&'static str, Out)> {
        let t = |v: &[f32], s: &[usize]| be.upload_f32(v, s).unwrap();
        let read = |r: ainrnn::backend::OpResult<ainrnn::backend::BTensor<B>>| -> Out {
            let r = r.map_err(|e| e.to_string())?;
            Ok((r.shape().to_vec(), be.to_f32(&r).unwrap()))
        };
        let no_cols = t(&[], &[3, 0]);
        let no_rows = t(&[], &[0, 5]);
        let table: Vec<f32> = (0..20).map(|i| i as f32 * 0.5).collect();
        let mut out = vec![
            (
                "softmax of no columns",
                read(be.softmax_rows(&no_cols, false)),
            ),
            (
                "log-softmax of no columns",
                read(be.softmax_rows(&no_cols, true)),
            ),
            (
                "log-sum-exp of no columns",
                read(be.logsumexp_rows(&no_cols)),
            ),
            ("softmax of no rows", read(be.softmax_rows(&no_rows, false))),
            ("log-sum-exp of no rows", read(be.logsumexp_rows(&no_rows))),
            (
                "softmax backward of no columns",
                read(be.softmax_rows_backward(&no_cols, &no_cols, true)),
            ),
            (
                "sum of no rows",
                read(be.reduce_rows(ReduceOp::Sum, &no_rows)),
            ),
            (
                "max of no rows",
                read(be.reduce_rows(ReduceOp::Max, &no_rows)),
            ),
            ("column sums of no columns", read(be.sum_cols(&no_cols))),
            (
                "exp of nothing",
                read(be.unary(UnaryOp::Exp, &t(&[], &[0]))),
            ),
            (
                "add to no rows",
                read(be.binary(BinaryOp::Add, &no_rows, &t(&[1.0; 5], &[5]))),
            ),
            (
                "affine of nothing",
                read(be.affine(&t(&[], &[0]), 2.0, 1.0)),
            ),
            (
                "bias after a product over k = 0",
                read(be.matmul_bias(
                    &t(&[], &[4, 0]),
                    &t(&[], &[0, 3]),
                    false,
                    false,
                    &t(&[1.0, -2.0, 0.5], &[3]),
                )),
            ),
        ];
        let plan = be.index_plan(&[], 5).unwrap();
        out.push((
            "gather of no index",
            read(be.gather_rows(&t(&table, &[5, 4]), &plan)),
        ));
        let mut dst = t(&table, &[5, 4]);
        let scattered = be
            .scatter_add_rows(&mut dst, &t(&[], &[0, 4]), &plan)
            .map(|()| dst);
        out.push(("scatter of no index", read(scattered)));
        out
    }
    let (want, got) = (cases(&CpuBackend::new()), cases(&g));
    for ((what, w), (_, o)) in want.iter().zip(&got) {
        match (w, o) {
            (Ok((ws, wv)), Ok((gs, gv))) => {
                assert_eq!(gs, ws, "{what}: shape");
                let same = wv.len() == gv.len()
                    && wv
                        .iter()
                        .zip(gv)
                        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                assert!(same, "{what}: GPU {gv:?}, CPU {wv:?}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{what}: CPU {w:?}, GPU {o:?}"),
        }
    }
}
