//! The trend model under MSTL: augurs' AutoETS, fitted on bucket means.
//!
//! A week of one-minute samples is 10,080 points; fitting AutoETS on all of them takes the
//! better part of a second, too slow for a thousand policies per interval. The trend of a
//! deseasonalised series changes slowly, so the series is cut into buckets from its end
//! (at most [`MAX_TREND_POINTS`] of them), AutoETS is fitted on their means, and the
//! trend at any sample is read by straight lines between bucket centres.

use std::borrow::Cow;

use augurs::ets::{AutoETS, FittedAutoETS};
use augurs::mstl::{FittedTrendModel, TrendModel};
use augurs::{Fit, Forecast, Predict};

/// The most buckets AutoETS is fitted on.
pub const MAX_TREND_POINTS: usize = 240;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// AutoETS (error, trend and damping chosen by AICc, no seasonal part: MSTL removes it) on
/// bucket means of `bucket` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketedEts {
    /// Samples per bucket.
    pub bucket: usize,
}

impl BucketedEts {
    /// Buckets just large enough to keep a series of `n` samples within
    /// [`MAX_TREND_POINTS`] buckets.
    pub fn for_len(n: usize) -> BucketedEts {
        BucketedEts {
            bucket: n.div_ceil(MAX_TREND_POINTS).max(1),
        }
    }
}

impl TrendModel for BucketedEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("AutoETS on bucket means")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        Ok(Box::new(FittedBucketedEts::fit(self.bucket.max(1), y)?))
    }
}

/// A fitted [`BucketedEts`].
#[derive(Debug, Clone)]
pub struct FittedBucketedEts {
    bucket: usize,
    /// Samples fitted on.
    n: usize,
    /// Position (sample index) of each bucket's centre, and the bucket's mean.
    knots: Vec<(f64, f64)>,
    model: FittedAutoETS,
}

impl FittedBucketedEts {
    fn fit(bucket: usize, y: &[f64]) -> Result<FittedBucketedEts, BoxError> {
        let n = y.len();
        let full = n / bucket;
        if full < 2 {
            return Err(format!("{n} samples make fewer than 2 buckets of {bucket}").into());
        }
        // Buckets are aligned with the end of the series, where the forecast starts.
        let skip = n - full * bucket;
        let centre = |j: usize| (skip + j * bucket) as f64 + (bucket as f64 - 1.0) / 2.0;
        let knots: Vec<(f64, f64)> = y[skip..]
            .chunks(bucket)
            .enumerate()
            .map(|(j, c)| (centre(j), c.iter().sum::<f64>() / c.len() as f64))
            .collect();
        let means: Vec<f64> = knots.iter().map(|k| k.1).collect();
        let model = AutoETS::non_seasonal().fit(&means)?;
        Ok(FittedBucketedEts {
            bucket,
            n,
            knots,
            model,
        })
    }

    /// The knots past the end of the series: the forecast buckets' centres and values,
    /// enough to reach `horizon` samples after the end.
    fn ahead(&self, horizon: usize) -> Result<Vec<(f64, f64)>, BoxError> {
        let buckets = horizon.div_ceil(self.bucket) + 1;
        let f = self.model.predict(buckets, None)?;
        let first = self.n as f64 + (self.bucket as f64 - 1.0) / 2.0;
        Ok(f.point
            .iter()
            .enumerate()
            .map(|(q, v)| (first + (q * self.bucket) as f64, *v))
            .collect())
    }
}

/// The value at `x` of the line through `knots` (sorted by position), flat before the
/// first knot and extended along the last segment after the last one.
fn piecewise(knots: &[(f64, f64)], x: f64) -> f64 {
    match knots {
        [] => f64::NAN,
        [(_, v)] => *v,
        _ => {
            if x <= knots[0].0 {
                return knots[0].1;
            }
            let i = knots
                .partition_point(|k| k.0 <= x)
                .clamp(1, knots.len() - 1);
            let (x0, y0) = knots[i - 1];
            let (x1, y1) = knots[i];
            y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        }
    }
}

impl FittedTrendModel for FittedBucketedEts {
    fn predict_inplace(
        &self,
        horizon: usize,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        if level.is_some() {
            return Err("bucketed ETS gives point forecasts only".into());
        }
        if horizon == 0 {
            return Ok(());
        }
        let mut knots = vec![*self.knots.last().expect("at least two buckets")];
        knots.extend(self.ahead(horizon)?);
        forecast.point = (0..horizon)
            .map(|i| piecewise(&knots, (self.n + i) as f64))
            .collect();
        Ok(())
    }

    fn predict_in_sample_inplace(
        &self,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        if level.is_some() {
            return Err("bucketed ETS gives point forecasts only".into());
        }
        // Past the last centre the line heads for the first forecast bucket.
        let mut knots = self.knots.clone();
        knots.extend(self.ahead(1)?.into_iter().take(1));
        forecast.point = (0..self.n).map(|i| piecewise(&knots, i as f64)).collect();
        Ok(())
    }

    fn training_data_size(&self) -> Option<usize> {
        Some(self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_continued_through_bucket_means() {
        let y: Vec<f64> = (0..1000).map(|i| 50.0 + 0.5 * i as f64).collect();
        let model = BucketedEts::for_len(y.len());
        assert_eq!(model.bucket, 5);
        let fitted = model.fit(&y).unwrap();
        let ahead = fitted.predict(10, None).unwrap().point;
        for (i, v) in ahead.iter().enumerate() {
            let want = 50.0 + 0.5 * (1000 + i) as f64;
            assert!((v - want).abs() < 1.0, "step {i}: {v} vs {want}");
        }
        let inside = fitted.predict_in_sample(None).unwrap().point;
        assert_eq!(inside.len(), 1000);
        assert!((inside[500] - 300.0).abs() < 1e-9);
        assert!((inside[999] - 549.5).abs() < 1.0);
    }

    #[test]
    fn piecewise_is_flat_before_the_first_knot_and_extends_the_last_segment() {
        let knots = [(1.0, 10.0), (3.0, 20.0), (5.0, 20.0)];
        assert_eq!(piecewise(&knots, 0.0), 10.0);
        assert_eq!(piecewise(&knots, 2.0), 15.0);
        assert_eq!(piecewise(&knots, 4.0), 20.0);
        assert_eq!(piecewise(&knots, 7.0), 20.0);
    }

    #[test]
    fn fewer_than_two_buckets_is_an_error() {
        assert!(BucketedEts { bucket: 10 }.fit(&[1.0; 15]).is_err());
    }
}
