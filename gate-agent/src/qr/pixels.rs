//! Camera frames as grayscale images: the luma of the pixel formats the V4L2
//! camera asks for, which is all the QR decoder looks at. Pure: the bytes of
//! one frame and its layout in, an image or an error out.

use image::GrayImage;

/// The pixel formats the camera input reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 8-bit luma only (monochrome cameras, capture cards).
    Grey,
    /// Packed 4:2:2, luma first: Y U Y V.
    Yuyv,
    /// Packed 4:2:2, chroma first: U Y V Y.
    Uyvy,
    /// A luma plane followed by interleaved chroma.
    Nv12,
    /// Motion JPEG: every frame a JPEG, decoded on the CPU.
    Mjpeg,
}

impl PixelFormat {
    /// The order a camera's formats are tried in: luma as stored first, JPEG
    /// (a decode per frame) last.
    pub const PREFERRED: [PixelFormat; 5] = [
        PixelFormat::Grey,
        PixelFormat::Yuyv,
        PixelFormat::Uyvy,
        PixelFormat::Nv12,
        PixelFormat::Mjpeg,
    ];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Grey => *b"GREY",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Uyvy => *b"UYVY",
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }

    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        Self::PREFERRED.into_iter().find(|f| f.fourcc() == code)
    }

    /// Bytes of one row's pixels (without padding); `None` for JPEG.
    fn row_bytes(self, width: u32) -> Option<usize> {
        match self {
            PixelFormat::Grey | PixelFormat::Nv12 => Some(width as usize),
            PixelFormat::Yuyv | PixelFormat::Uyvy => Some(2 * width as usize),
            PixelFormat::Mjpeg => None,
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.fourcc()))
    }
}

/// What a camera delivers, as the driver settled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (the driver's `bytesperline`; rows
    /// may be padded).
    pub stride: u32,
}

impl std::fmt::Display for FrameLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} {}", self.width, self.height, self.format)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PixelError {
    #[error("a {layout} frame (stride {stride}) needs {want} bytes, got {got}")]
    Short {
        layout: FrameLayout,
        stride: usize,
        want: usize,
        got: usize,
    },
    #[error("MJPEG frame: {0}")]
    Jpeg(String),
    #[error("the driver gave its frames no size")]
    Empty,
}

/// The luma of one frame.
pub fn luma(layout: &FrameLayout, data: &[u8]) -> Result<GrayImage, PixelError> {
    let (w, h) = (layout.width as usize, layout.height as usize);
    if w == 0 || h == 0 {
        return Err(PixelError::Empty);
    }
    let Some(row) = layout.format.row_bytes(layout.width) else {
        return image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
            .map(|i| i.to_luma8())
            .map_err(|e| PixelError::Jpeg(e.to_string()));
    };
    // A driver that reports no padding may report no stride at all.
    let stride = (layout.stride as usize).max(row);
    let want = stride * (h - 1) + row;
    if data.len() < want {
        return Err(PixelError::Short {
            layout: *layout,
            stride,
            want,
            got: data.len(),
        });
    }
    let mut pixels = Vec::with_capacity(w * h);
    for line in data.chunks(stride).take(h) {
        let line = &line[..row];
        match layout.format {
            PixelFormat::Grey | PixelFormat::Nv12 => pixels.extend_from_slice(line),
            PixelFormat::Yuyv => pixels.extend(line.iter().step_by(2)),
            PixelFormat::Uyvy => pixels.extend(line.iter().skip(1).step_by(2)),
            PixelFormat::Mjpeg => unreachable!("JPEG frames are decoded above"),
        }
    }
    GrayImage::from_raw(layout.width, layout.height, pixels).ok_or(PixelError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(format: PixelFormat, width: u32, height: u32, stride: u32) -> FrameLayout {
        FrameLayout {
            format,
            width,
            height,
            stride,
        }
    }

    #[test]
    fn luma_is_taken_from_each_format_and_row_padding_skipped() {
        // 2x2 pixels, luma 10 20 / 30 40; rows padded to 8 bytes.
        let grey = [10, 20, 0, 0, 0, 0, 0, 0, 30, 40];
        let yuyv = [10, 128, 20, 128, 0, 0, 0, 0, 30, 128, 40, 128];
        let uyvy = [128, 10, 128, 20, 0, 0, 0, 0, 128, 30, 128, 40];
        // The chroma plane after the luma rows is not read.
        let nv12 = [10, 20, 0, 0, 0, 0, 0, 0, 30, 40, 0, 0, 0, 0, 0, 0, 128, 128];
        for (format, data) in [
            (PixelFormat::Grey, &grey[..]),
            (PixelFormat::Yuyv, &yuyv[..]),
            (PixelFormat::Uyvy, &uyvy[..]),
            (PixelFormat::Nv12, &nv12[..]),
        ] {
            let image = luma(&layout(format, 2, 2, 8), data).unwrap();
            assert_eq!(image.as_raw(), &[10, 20, 30, 40], "{format}");
        }
        // No stride reported: rows are packed.
        let packed = luma(&layout(PixelFormat::Yuyv, 2, 1, 0), &[1, 0, 2, 0]).unwrap();
        assert_eq!(packed.as_raw(), &[1, 2]);
    }

    #[test]
    fn a_short_or_empty_frame_is_an_error_not_a_panic() {
        let error = luma(&layout(PixelFormat::Yuyv, 640, 480, 1280), &[0; 1000]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a 640x480 YUYV frame (stride 1280) needs 614400 bytes, got 1000"
        );
        assert_eq!(
            luma(&layout(PixelFormat::Grey, 0, 480, 0), &[]),
            Err(PixelError::Empty)
        );
        assert!(matches!(
            luma(&layout(PixelFormat::Mjpeg, 640, 480, 0), b"not a jpeg"),
            Err(PixelError::Jpeg(_))
        ));
    }

    #[test]
    fn a_jpeg_frame_is_decoded() {
        let frame = GrayImage::from_fn(16, 8, |x, _| image::Luma([if x < 8 { 0 } else { 255 }]));
        let mut jpeg = Vec::new();
        frame
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let image = luma(&layout(PixelFormat::Mjpeg, 16, 8, 0), &jpeg).unwrap();
        assert_eq!(image.dimensions(), (16, 8));
        assert!(image.get_pixel(2, 4).0[0] < 40 && image.get_pixel(13, 4).0[0] > 215);
    }

    #[test]
    fn fourccs_round_trip_in_preference_order() {
        for format in PixelFormat::PREFERRED {
            assert_eq!(PixelFormat::from_fourcc(format.fourcc()), Some(format));
        }
        assert_eq!(PixelFormat::from_fourcc(*b"RGB3"), None);
        assert_eq!(PixelFormat::PREFERRED[0], PixelFormat::Grey);
    }
}
