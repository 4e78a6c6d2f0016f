//! The model's recurrent layers as one stack of a single layer type, and a forward pass through
//! it. A pass holds the layers (shared) with their caches, so each cache meets its own layer in
//! the backward pass by type, not by a run-time match.

use std::sync::Arc;

use super::layers::{IndRnnLayer, Layer, LstmLayer, OutGrad, SeqInputs};
use super::params::Params;
use crate::backend::model_ops::ModelOps;
use crate::backend::{BTensor, OpResult};

/// The recurrent layers, all of one type. Shared (`Arc`) with the caches of the forward passes,
/// so that a cache carries the layers that made it: the types pair each layer with its cache.
pub(super) enum Recurrent {
    IndRnn(Arc<[IndRnnLayer]>),
    Lstm(Arc<[LstmLayer]>),
}

impl Recurrent {
    pub(super) fn len(&self) -> usize {
        match self {
            Recurrent::IndRnn(ls) => ls.len(),
            Recurrent::Lstm(ls) => ls.len(),
        }
    }

    /// A forward pass that has run no layer yet.
    pub(super) fn pass<B: ModelOps>(&self) -> RecurrentPass<B> {
        match self {
            Recurrent::IndRnn(ls) => RecurrentPass::IndRnn(Pass::new(ls)),
            Recurrent::Lstm(ls) => RecurrentPass::Lstm(Pass::new(ls)),
        }
    }
}

/// One forward pass through a stack of `L`: the layers and the caches of those run so far.
pub(super) struct Pass<B: ModelOps, L: Layer<B>> {
    layers: Arc<[L]>,
    caches: Vec<L::Cache>,
}

impl<B: ModelOps, L: Layer<B>> Pass<B, L> {
    fn new(layers: &Arc<[L]>) -> Self {
        Pass {
            layers: layers.clone(),
            caches: Vec::with_capacity(layers.len()),
        }
    }

    /// Runs the next layer; returns its output `[B, L, H]`.
    fn push(
        &mut self,
        b: &B,
        p: &Params<B>,
        x: &SeqInputs<'_, B>,
        shape: (usize, usize),
    ) -> OpResult<&BTensor<B>> {
        let c = self.layers[self.caches.len()].forward(b, p, x, shape)?;
        self.caches.push(c);
        Ok(L::output(self.caches.last().expect("just pushed")))
    }

    fn backward(
        &self,
        i: usize,
        b: &B,
        p: &mut Params<B>,
        x: &SeqInputs<'_, B>,
        g: OutGrad<'_, B>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        self.layers[i].backward(b, p, x, &self.caches[i], g)
    }
}

/// A forward pass through the model's layers, of their type.
pub(super) enum RecurrentPass<B: ModelOps> {
    IndRnn(Pass<B, IndRnnLayer>),
    Lstm(Pass<B, LstmLayer>),
}

impl<B: ModelOps> RecurrentPass<B> {
    /// Runs the next layer; returns its output `[B, L, H]`.
    pub(super) fn push(
        &mut self,
        b: &B,
        p: &Params<B>,
        x: &SeqInputs<'_, B>,
        shape: (usize, usize),
    ) -> OpResult<&BTensor<B>> {
        match self {
            RecurrentPass::IndRnn(r) => r.push(b, p, x, shape),
            RecurrentPass::Lstm(r) => r.push(b, p, x, shape),
        }
    }

    /// Layer `i`'s backward pass from its own cache.
    pub(super) fn backward(
        &self,
        i: usize,
        b: &B,
        p: &mut Params<B>,
        x: &SeqInputs<'_, B>,
        g: OutGrad<'_, B>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        match self {
            RecurrentPass::IndRnn(r) => r.backward(i, b, p, x, g),
            RecurrentPass::Lstm(r) => r.backward(i, b, p, x, g),
        }
    }
}
