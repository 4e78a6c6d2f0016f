//! Data movement and the GPU runtime's buffer reuse ("dirty scratch": pooled buffers come back
//! with old contents, so every kernel must write all of its output).

use ainrnn::backend::{Backend, BinaryOp, HostTensor, ReduceOp};

use crate::common::*;

pub fn pooled_buffers_are_reused_cleanly<B: Backend>(be: &B) {
    let mut r = rng(100);
    for round in 0..4 {
        // Same sizes every round, so outputs land in buffers that held the previous round's data.
        let (rows, cols) = (37, 1500);
        let v = uniform(&mut r, rows * cols, -3.0, 3.0);
        let w = uniform(&mut r, cols, -1.0, 1.0);
        let a = be.upload_f32(&v, &[rows, cols]).unwrap();
        let b = be.upload_f32(&w, &[cols]).unwrap();
        let s = be.binary(BinaryOp::Mul, &a, &b).unwrap();
        let sums = be.reduce_rows(ReduceOp::Sum, &s).unwrap();
        let want: Vec<f64> = v
            .chunks(cols)
            .map(|row| row.iter().zip(&w).map(|(&x, &y)| x as f64 * y as f64).sum())
            .collect();
        assert_close(
            &format!("round {round}: row sums of a*b"),
            &be.to_f32(&sums).unwrap(),
            &want,
            Tol::sum(cols),
        );
        let z = be.zeros(&[rows, cols]).unwrap();
        assert!(
            be.to_f32(&z).unwrap().iter().all(|&x| x == 0.0),
            "round {round}: zeros() from a reused buffer"
        );
    }
}

pub fn round_trip_and_write<B: Backend>(be: &B) {
    let v: Vec<f32> = (0..1001).map(|i| i as f32 * 0.5 - 3.0).collect();
    let mut t = be.upload_f32(&v, &[7, 143]).unwrap();
    assert_eq!(be.to_f32(&t).unwrap(), v);
    let u: Vec<u32> = (0..77).map(|i| i * 3 + 1).collect();
    let tu = be.upload_u32(&u, &[77]).unwrap();
    assert_eq!(be.to_u32(&tu).unwrap(), u);
    assert!(be.to_f32(&tu).is_err(), "reading u32 as f32 must fail");
    let w: Vec<f32> = v.iter().map(|x| -x).collect();
    be.write_f32(&mut t, &w).unwrap();
    assert_eq!(be.to_f32(&t).unwrap(), w);
    assert!(be.write_f32(&mut t, &w[..10]).is_err());
    assert!(be.upload_f32(&v, &[2, 2]).is_err());
    let empty = be.upload_f32(&[], &[0, 4]).unwrap();
    assert!(be.to_f32(&empty).unwrap().is_empty());
    let reshaped = t.reshape(&[1001]).unwrap();
    assert_eq!(reshaped.shape(), &[1001]);
    assert!(reshaped.reshape(&[1000]).is_err());
    // Shapes whose element count overflows are refused, not wrapped: [2^62 + 1, 4] "has" 4
    // elements modulo 2^64, and [usize::MAX, 2] cannot be allocated.
    let wrap = [(1usize << 62) + 1, 4];
    let e = be.upload_f32(&[0.0; 4], &wrap).unwrap_err().to_string();
    assert!(e.contains("upload_f32") && e.contains("elements"), "{e}");
    let four = be.upload_f32(&[0.0; 4], &[4]).unwrap();
    let e = four.reshape(&wrap).unwrap_err().to_string();
    assert!(e.contains("reshape") && e.contains("elements"), "{e}");
    for shape in [&[usize::MAX, 2][..], &wrap] {
        let e = be.zeros(shape).unwrap_err().to_string();
        assert!(e.contains("elements"), "{shape:?}: {e}");
    }
    // Addressable but far past any memory (2^46 values, 256 TiB): an error, not an abort.
    let e = be.zeros(&[1 << 23, 1 << 23]).unwrap_err().to_string();
    assert!(
        e.contains("cannot allocate") || e.contains("max_storage_buffer_binding_size"),
        "{e}"
    );
    be.sync().unwrap();
}

/// `to_host` reads several tensors of both types in one call: each equal to its own `to_f32` /
/// `to_u32`, in order, an empty one included, and an op's output still pending on the device.
pub fn to_host_reads_many_tensors<B: Backend>(be: &B) {
    let mut r = rng(101);
    let (m, k, n) = (13, 70, 9);
    let a = be
        .upload_f32(&uniform(&mut r, m * k, -1.0, 1.0), &[m, k])
        .unwrap();
    let w = be
        .upload_f32(&uniform(&mut r, k * n, -1.0, 1.0), &[k, n])
        .unwrap();
    // Recorded, not yet waited for: the read-back must follow it.
    let c = be.matmul(&a, &w, false, false).unwrap();
    let ids: Vec<u32> = (0..333).map(|i| i * 7 + 2).collect();
    let u = be.upload_u32(&ids, &[333]).unwrap();
    let empty = be.upload_f32(&[], &[0, 4]).unwrap();
    let big = be
        .upload_f32(&uniform(&mut r, 70_001, -5.0, 5.0), &[70_001])
        .unwrap();
    let got = be.to_host(&[&c, &u, &empty, &a, &big]).unwrap();
    assert_eq!(got.len(), 5);
    let mut it = got.into_iter();
    assert_eq!(it.next().unwrap(), HostTensor::F32(be.to_f32(&c).unwrap()));
    assert_eq!(it.next().unwrap(), HostTensor::U32(ids));
    assert_eq!(it.next().unwrap(), HostTensor::F32(vec![]));
    assert_eq!(it.next().unwrap(), HostTensor::F32(be.to_f32(&a).unwrap()));
    let last = it.next().unwrap();
    assert!(last.clone().into_u32("test").is_err(), "f32 read as u32");
    assert_eq!(last.into_f32("test").unwrap(), be.to_f32(&big).unwrap());
    assert!(be.to_host(&[]).unwrap().is_empty());
}

/// `read_later` gives the values the tensors held when it was called, whatever is recorded
/// after it (the trainer reads a loss back while the next steps run and write into new sums).
pub fn read_later_gives_the_values_when_started<B: Backend>(be: &B) {
    let mut acc = be.upload_f32(&[1.0, 2.0, 3.0], &[3]).unwrap();
    let x = be.upload_f32(&[10.0, 20.0, 30.0], &[3]).unwrap();
    let ids = be.upload_u32(&[7, 8], &[2]).unwrap();
    be.axpy(&mut acc, &x, 1.0).unwrap();
    let first = be.read_later(&[&acc, &ids]).unwrap();
    // Recorded after the read: must not show in it.
    be.axpy(&mut acc, &x, 2.0).unwrap();
    let second = be.read_later(&[&acc]).unwrap();
    be.axpy(&mut acc, &x, -1.0).unwrap();
    assert_eq!(
        first.wait().unwrap(),
        [
            HostTensor::F32(vec![11.0, 22.0, 33.0]),
            HostTensor::U32(vec![7, 8])
        ]
    );
    assert_eq!(
        second.wait().unwrap(),
        [HostTensor::F32(vec![31.0, 62.0, 93.0])]
    );
    assert_eq!(be.to_f32(&acc).unwrap(), vec![21.0, 42.0, 63.0]);
    let empty = be.upload_f32(&[], &[0]).unwrap();
    assert_eq!(
        be.read_later(&[&empty]).unwrap().wait().unwrap(),
        [HostTensor::F32(vec![])]
    );
    assert!(be.read_later(&[]).unwrap().wait().unwrap().is_empty());
}
