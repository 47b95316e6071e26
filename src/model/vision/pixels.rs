//! Images as a vision model takes them, as `InternVL`'s processor prepares
//! them (`GotOcr2ImageProcessor`): RGB, resized to the model's square size
//! with a bicubic filter (or, with dynamic tiling, resized to a grid of
//! such tiles and cut, plus a thumbnail), scaled to [0, 1], and normalised
//! per channel.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Result as CandleResult, Tensor};
use image::imageops::FilterType;
use image::RgbImage;

use super::VisionConfig;

/// An image file that cannot be read or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ImageError {
    pub path: PathBuf,
    pub source: image::ImageError,
}

/// Normalised pixel values `[tiles, 3, size, size]`, channel-major
/// (shared, cheap to clone).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    values: Arc<[f32]>,
    size: usize,
    tiles: usize,
}

impl Pixels {
    /// Reads a PNG or JPEG file (by its content, not its name).
    pub fn open(path: &Path, config: &VisionConfig) -> Result<Self, ImageError> {
        let error = |source| ImageError {
            path: path.to_path_buf(),
            source,
        };
        let image = image::ImageReader::open(path)
            .map_err(|e| error(image::ImageError::IoError(e)))?
            .with_guessed_format()
            .map_err(|e| error(image::ImageError::IoError(e)))?
            .decode()
            .map_err(error)?;
        Ok(Self::from_rgb(&image.to_rgb8(), config))
    }

    /// Prepares an RGB image: resized unless it already has the model's
    /// size (or cut into tiles), then scaled and normalised.
    pub fn from_rgb(image: &RgbImage, config: &VisionConfig) -> Self {
        let size = config.image_size;
        let tiles = match config.tiles {
            Some((lo, hi)) if hi > 1 => tile(image, size, lo, hi),
            _ => vec![resize(image, size, size)],
        };
        let mut values = vec![0f32; tiles.len() * 3 * size * size];
        for (t, tile) in tiles.iter().enumerate() {
            let out = &mut values[t * 3 * size * size..];
            for (x, y, pixel) in tile.enumerate_pixels() {
                for (ch, &v) in pixel.0.iter().enumerate() {
                    let scaled = f64::from(v) / 255.0;
                    out[(ch * size + y as usize) * size + x as usize] =
                        ((scaled - config.mean[ch]) / config.std[ch]) as f32;
                }
            }
        }
        Self {
            values: values.into(),
            size,
            tiles: tiles.len(),
        }
    }

    /// Tiles the model sees for this image (each takes
    /// `tokens_per_image` positions).
    pub fn tiles(&self) -> usize {
        self.tiles
    }

    /// A uniform image of one colour (the "no image" control of visual
    /// evaluations).
    pub fn blank(rgb: [u8; 3], config: &VisionConfig) -> Self {
        let size = config.image_size as u32;
        Self::from_rgb(&RgbImage::from_pixel(size, size, image::Rgb(rgb)), config)
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// `[tiles, 3, size, size]`: every tile of every image, in order
    /// (every image the same size).
    pub fn stack(images: &[&Pixels], device: &Device) -> CandleResult<Tensor> {
        let size = images.first().map_or(0, |p| p.size);
        if images.iter().any(|p| p.size != size) {
            candle_core::bail!("images of different sizes in one batch");
        }
        let tiles = images.iter().map(|p| p.tiles).sum::<usize>();
        let values: Vec<f32> = images
            .iter()
            .flat_map(|p| p.values.iter().copied())
            .collect();
        Tensor::from_vec(values, (tiles, 3, size, size), device)
    }
}

/// `image` at `width × height` (bicubic), or itself when it has that size.
fn resize(image: &RgbImage, width: usize, height: usize) -> RgbImage {
    if image.width() as usize == width && image.height() as usize == height {
        return image.clone();
    }
    image::imageops::resize(image, width as u32, height as u32, FilterType::CatmullRom)
}

/// `InternVL`'s dynamic tiling (transformers' `crop_image_to_patches`): the
/// image resized to the grid of `size` tiles whose shape best fits its
/// aspect ratio, cut row by row, and a thumbnail when there is more than
/// one tile.
fn tile(image: &RgbImage, size: usize, lo: usize, hi: usize) -> Vec<RgbImage> {
    let (cols, rows) = grid(
        (image.width() as usize, image.height() as usize),
        size,
        lo,
        hi,
    );
    let whole = resize(image, size * cols, size * rows);
    let mut tiles: Vec<RgbImage> = (0..cols * rows)
        .map(|i| {
            let (x, y) = ((i % cols) * size, (i / cols) * size);
            image::imageops::crop_imm(&whole, x as u32, y as u32, size as u32, size as u32)
                .to_image()
        })
        .collect();
    if tiles.len() != 1 {
        tiles.push(resize(image, size, size));
    }
    tiles
}

/// transformers' `get_optimal_tiled_canvas`: of the grids of `lo..=hi`
/// tiles (by tile count, then columns), the one whose aspect ratio is
/// closest to the image's; on a tie, the later (larger) grid while the
/// image's area exceeds half of the grid's. (Exact float comparison, as
/// transformers ties.)
#[allow(clippy::float_cmp)]
fn grid((width, height): (usize, usize), size: usize, lo: usize, hi: usize) -> (usize, usize) {
    let mut grids: Vec<(usize, usize)> = (1..=hi)
        .flat_map(|w| (1..=hi).map(move |h| (w, h)))
        .filter(|(w, h)| (lo..=hi).contains(&(w * h)))
        .collect();
    grids.sort_by_key(|(w, h)| w * h);
    let aspect = width as f64 / height as f64;
    let area = (width * height) as f64;
    let mut best = (f64::INFINITY, (1, 1));
    for (w, h) in grids {
        let diff = (aspect - w as f64 / h as f64).abs();
        if diff < best.0 {
            best = (diff, (w, h));
        } else if diff == best.0 && area > 0.5 * (size * size * w * h) as f64 {
            best.1 = (w, h);
        }
    }
    best.1
}
