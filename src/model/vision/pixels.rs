//! Images as a vision model takes them, as InternVL's processor prepares
//! them (`GotOcr2ImageProcessor` without tiling): RGB, resized to the
//! model's square size with a bicubic filter, scaled to [0, 1], and
//! normalised per channel.

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

/// Normalised pixel values `[3, size, size]`, channel-major (shared, cheap
/// to clone).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    values: Arc<[f32]>,
    size: usize,
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
    /// size, then scaled and normalised.
    pub fn from_rgb(image: &RgbImage, config: &VisionConfig) -> Self {
        let size = config.image_size;
        let resized;
        let image = if image.width() as usize == size && image.height() as usize == size {
            image
        } else {
            resized =
                image::imageops::resize(image, size as u32, size as u32, FilterType::CatmullRom);
            &resized
        };
        let mut values = vec![0f32; 3 * size * size];
        for (x, y, pixel) in image.enumerate_pixels() {
            for (ch, &v) in pixel.0.iter().enumerate() {
                let scaled = f64::from(v) / 255.0;
                values[(ch * size + y as usize) * size + x as usize] =
                    ((scaled - config.mean[ch]) / config.std[ch]) as f32;
            }
        }
        Self {
            values: values.into(),
            size,
        }
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

    /// `[images.len(), 3, size, size]` (every image the same size).
    pub fn stack(images: &[&Pixels], device: &Device) -> CandleResult<Tensor> {
        let size = images.first().map_or(0, |p| p.size);
        if images.iter().any(|p| p.size != size) {
            candle_core::bail!("images of different sizes in one batch");
        }
        let values: Vec<f32> = images
            .iter()
            .flat_map(|p| p.values.iter().copied())
            .collect();
        Tensor::from_vec(values, (images.len(), 3, size, size), device)
    }
}
