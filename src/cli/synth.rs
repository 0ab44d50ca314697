//! Writes synthetic ReID datasets (Market-1501-, DukeMTMC-reID-, MSMT17-,
//! CUHK03-NP-, LUPerson-NL- and LUPerson-style) with ground-truth sidecars.
//!
//! ```text
//! reid synth --out /tmp/synth --kind all --seed 0
//! ```
//!
//! Exit status (`reid::cli::exit`): 0 on success, 2 for bad arguments
//! (clap usage errors, invalid values, an existing non-empty output folder
//! without `--force`, an output path that is not a writable folder), 1 when
//! the environment fails (a full disk).
//!
//! The `synth` example and `reid synth` run this module.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::set_if_given;
use clap::{Parser, ValueEnum};
use reid_data::DataError;
use reid_synth::Span;
use reid_synth::{
    Cuhk03Config, DukeConfig, LupersonConfig, LupersonNlConfig, Market1501Config, Msmt17Config,
    MsmtVersion, PartStats, SynthReport, WorldConfig, write_cuhk03_np, write_dukemtmc,
    write_luperson, write_luperson_nl, write_market1501, write_msmt17,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Market1501,
    Dukemtmc,
    Msmt17,
    #[value(name = "cuhk03-np")]
    Cuhk03Np,
    #[value(name = "luperson-nl")]
    LupersonNl,
    Luperson,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Version {
    V1,
    V2,
}

/// Generate synthetic person re-identification datasets.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Output directory; each dataset gets its own folder inside it.
    #[arg(long)]
    out: PathBuf,
    /// Which layout to write.
    #[arg(long, value_enum, default_value_t = Kind::All)]
    kind: Kind,
    /// World seed (same seed, same bytes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image height in pixels.
    #[arg(long, default_value_t = 128)]
    height: u32,
    /// Image width in pixels.
    #[arg(long, default_value_t = 64)]
    width: u32,
    /// Training identities (image datasets; default: each layout's own).
    #[arg(long)]
    train_ids: Option<u32>,
    /// Test identities (image datasets; default: each layout's own).
    #[arg(long)]
    test_ids: Option<u32>,
    /// Cameras (Market ≤ 6, Duke ≤ 8, MSMT17 ≤ 15, CUHK03-NP = 2).
    #[arg(long)]
    cameras: Option<u32>,
    /// Junk images (Market-1501).
    #[arg(long)]
    junk: Option<u32>,
    /// Distractor images (Market-1501) or distractor identities (DukeMTMC-reID).
    #[arg(long)]
    distractors: Option<u32>,
    /// MSMT17 folder variant.
    #[arg(long, value_enum, default_value_t = Version::V1)]
    msmt_version: Version,
    /// Videos (video corpora).
    #[arg(long)]
    videos: Option<u32>,
    /// Countries (video corpora).
    #[arg(long)]
    countries: Option<u32>,
    /// Cities per country (video corpora).
    #[arg(long)]
    cities: Option<u32>,
    /// Maximum persons per video (video corpora).
    #[arg(long)]
    persons_per_video: Option<u32>,
    /// Backdrop segments a person walks past per frame (video corpora; 0:
    /// one background per video).
    #[arg(long)]
    street_speed: Option<f32>,
    /// Probability that a person slot is filled by someone seen in an
    /// earlier video (video corpora).
    #[arg(long)]
    recurrence: Option<f32>,
    /// Probability that a new person is a look-alike of an earlier one:
    /// the same garments in slightly other shades (video corpora; default 0).
    #[arg(long)]
    lookalikes: Option<f32>,
    /// Strength of each video's colour cast (gain and white balance) relative
    /// to the default ranges, in [0, 4] (video corpora; default 1).
    #[arg(long)]
    appearance_shift: Option<f32>,
    /// Multiplier of each video's sensor noise, in [0, 10] (video corpora;
    /// default 1).
    #[arg(long)]
    sensor_noise: Option<f32>,
    /// Identity-switch probability per tracklet (LUPerson-NL).
    #[arg(long)]
    switch: Option<f32>,
    /// Fragmentation probability per detection (LUPerson-NL).
    #[arg(long)]
    fragment: Option<f32>,
    /// Base occlusion probability.
    #[arg(long, default_value_t = 0.2)]
    occlusion: f32,
    /// JPEG quality (1–100).
    #[arg(long, default_value_t = 90)]
    quality: u8,
    /// Replace existing output folders (only ones this generator wrote).
    #[arg(long)]
    force: bool,
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args).map_err(|e| {
        // The world's errors are classified as the data errors they mirror.
        let e = match e.downcast::<reid_synth::SynthError>() {
            Ok(s) => anyhow::Error::new(DataError::from(s)),
            Err(other) => other,
        };
        match e.downcast::<DataError>() {
            // Invalid values and an existing output folder are the user's; a
            // failure to write is the environment's, unless the path given
            // cannot be written at all (not a folder, no permission).
            Ok(d) => super::exit::classify_data(d),
            Err(other) => other,
        }
    }))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let world = WorldConfig::default()
        .with_seed(args.seed)
        .with_height(args.height)
        .with_width(args.width)
        .with_occlusion(args.occlusion)
        .with_jpeg_quality(args.quality)
        .with_overwrite(args.force);
    world.validate()?;
    let kinds: Vec<Kind> = if args.kind == Kind::All {
        vec![
            Kind::Market1501,
            Kind::Dukemtmc,
            Kind::Msmt17,
            Kind::Cuhk03Np,
            Kind::LupersonNl,
            Kind::Luperson,
        ]
    } else {
        vec![args.kind]
    };
    // Validate every config before writing anything.
    let plans: Vec<Plan> = kinds
        .iter()
        .map(|&k| plan(args, k))
        .collect::<Result<_, DataError>>()?;
    // Refuse before writing anything when a dataset folder is already there.
    if !args.force {
        for p in &plans {
            let dir = args.out.join(p.folder());
            let non_empty = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
            if non_empty {
                return Err(DataError::InvalidArgument(format!(
                    "output folder {} exists and is not empty; pass --force to replace it",
                    dir.display()
                ))
                .into());
            }
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| DataError::io(&args.out, e))?;
    let total = Instant::now();
    for p in &plans {
        let t = Instant::now();
        let report = match p {
            Plan::Market(c) => write_market1501(&args.out, &world, c)?,
            Plan::Duke(c) => write_dukemtmc(&args.out, &world, c)?,
            Plan::Msmt(c) => write_msmt17(&args.out, &world, c)?,
            Plan::Cuhk(c) => write_cuhk03_np(&args.out, &world, c)?,
            Plan::Nl(c) => write_luperson_nl(&args.out, &world, c)?,
            Plan::Lup(c) => write_luperson(&args.out, &world, c)?,
        };
        print_report(&report, t.elapsed().as_secs_f64());
    }
    println!("total: {:.2} s", total.elapsed().as_secs_f64());
    Ok(())
}

enum Plan {
    Market(Market1501Config),
    Duke(DukeConfig),
    Msmt(Msmt17Config),
    Cuhk(Cuhk03Config),
    Nl(LupersonNlConfig),
    Lup(LupersonConfig),
}

impl Plan {
    /// The dataset folder this plan writes inside `--out`.
    fn folder(&self) -> &'static str {
        match self {
            Plan::Market(_) => reid_synth::market::FOLDER,
            Plan::Duke(_) => reid_synth::duke::FOLDER,
            Plan::Msmt(c) => c.version.folders().0,
            Plan::Cuhk(_) => reid_synth::cuhk03::FOLDER,
            Plan::Nl(_) => reid_synth::luperson::NL_FOLDER,
            Plan::Lup(_) => reid_synth::luperson::LUP_FOLDER,
        }
    }
}

fn plan(args: &Args, kind: Kind) -> Result<Plan, DataError> {
    macro_rules! ids {
        ($c:ident) => {
            set_if_given(&mut $c.train_ids, args.train_ids);
            set_if_given(&mut $c.test_ids, args.test_ids);
            set_if_given(&mut $c.cameras, args.cameras);
        };
    }
    let video = |mut v: reid_synth::VideoConfig| {
        set_if_given(&mut v.videos, args.videos);
        set_if_given(&mut v.countries, args.countries);
        set_if_given(&mut v.cities_per_country, args.cities);
        if let Some(n) = args.persons_per_video {
            v.persons_per_video.max = n;
            v.persons_per_video.min = v.persons_per_video.min.min(n);
        }
        set_if_given(&mut v.street_speed, args.street_speed);
        set_if_given(&mut v.recurrence, args.recurrence);
        set_if_given(&mut v.lookalikes, args.lookalikes);
        set_if_given(&mut v.appearance_shift, args.appearance_shift);
        set_if_given(&mut v.sensor_noise, args.sensor_noise);
        v
    };
    let plan = match kind {
        Kind::Market1501 => {
            let mut c = Market1501Config::default();
            ids!(c);
            cap_cams_per_id(&mut c.cams_per_id, args.cameras);
            set_if_given(&mut c.junk, args.junk);
            set_if_given(&mut c.distractors, args.distractors);
            c.validate()?;
            Plan::Market(c)
        }
        Kind::Dukemtmc => {
            let mut c = DukeConfig::default();
            ids!(c);
            cap_cams_per_id(&mut c.cams_per_id, args.cameras);
            set_if_given(&mut c.distractor_ids, args.distractors);
            c.validate()?;
            Plan::Duke(c)
        }
        Kind::Msmt17 => {
            let mut c = Msmt17Config::default();
            ids!(c);
            cap_cams_per_id(&mut c.cams_per_id, args.cameras);
            c.version = match args.msmt_version {
                Version::V1 => MsmtVersion::V1,
                Version::V2 => MsmtVersion::V2,
            };
            c.validate()?;
            Plan::Msmt(c)
        }
        Kind::Cuhk03Np => {
            let mut c = Cuhk03Config::default();
            ids!(c);
            c.validate()?;
            Plan::Cuhk(c)
        }
        Kind::LupersonNl => {
            let mut c = LupersonNlConfig::default().with_video(video(Default::default()));
            set_if_given(&mut c.noise.switch, args.switch);
            set_if_given(&mut c.noise.fragment, args.fragment);
            c.validate()?;
            Plan::Nl(c)
        }
        Kind::Luperson => {
            let c = LupersonConfig::default().with_video(video(Default::default()));
            c.validate()?;
            Plan::Lup(c)
        }
        Kind::All => unreachable!("expanded by the caller"),
    };
    Ok(plan)
}

/// `--cameras` also caps how many cameras see each identity (not below
/// the least).
fn cap_cams_per_id(span: &mut Span, cameras: Option<u32>) {
    if let Some(n) = cameras {
        span.max = span.max.min(n).max(span.min);
    }
}

fn print_report(r: &SynthReport, secs: f64) {
    println!(
        "{}: {} images written to {} in {secs:.2} s",
        r.layout.name(),
        r.images_written,
        r.dataset_dir.display()
    );
    for part in &r.parts {
        match part.stats {
            PartStats::Images(s) => {
                println!("  {} ({})", part.name, part.dir.display());
                println!("    subset   | # ids | # images | # cameras");
                for (name, st) in [
                    ("train", s.train),
                    ("query", s.query),
                    ("gallery", s.gallery),
                ] {
                    println!(
                        "    {name:<8} | {:>5} | {:>8} | {:>9}",
                        st.ids, st.images, st.cams
                    );
                }
            }
            PartStats::Corpus(s) => {
                println!(
                    "  {}: {} videos, {} tracklets, {} images",
                    part.name, s.videos, s.tracklets, s.images
                );
            }
        }
    }
    if let Some(n) = &r.noise {
        println!(
            "  tracker noise: {:.1} % of crops mislabeled, {} of {} tracklets mixed, {:.2} tracklets per true track, {} false detections, {} of {} persons in several videos",
            100.0 * n.mislabeled_fraction,
            n.mixed_tracklets,
            n.tracklets,
            n.tracklets_per_track,
            n.false_detections,
            n.persons_in_several_videos,
            n.persons
        );
    }
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}
