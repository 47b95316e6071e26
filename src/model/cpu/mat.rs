//! Strided views of f32 matrices: what [`super::gemm`] multiplies.

/// A read-only strided matrix.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    /// Elements between consecutive rows and columns.
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn t(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    /// Row-major rows of width `stride`, `cols` of which start at `offset`
    /// (one head's columns of a `[tokens, heads · head_dim]` buffer).
    pub fn cols(data: &'a [f32], stride: usize, offset: usize) -> Self {
        Self {
            data: &data[offset..],
            rs: stride,
            cs: 1,
        }
    }

    /// The transpose of [`Mat::cols`].
    pub fn cols_t(data: &'a [f32], stride: usize, offset: usize) -> Self {
        Self {
            data: &data[offset..],
            rs: 1,
            cs: stride,
        }
    }
}

/// A writable strided matrix.
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatMut<'a> {
    pub fn rows(data: &'a mut [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    pub fn cols(data: &'a mut [f32], stride: usize, offset: usize) -> Self {
        Self {
            data: &mut data[offset..],
            rs: stride,
            cs: 1,
        }
    }
}
