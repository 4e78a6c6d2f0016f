//! `ainrnn synth`: deterministic, always labelled synthetic, parseable by the triplet reader,
//! popularity skewed like Zipf's law, and users with latent tastes (real signal to learn).

use std::io::Cursor;
use std::path::Path;

use ainrnn::data::lines::LineReader;
use ainrnn::data::prepare::{prepare, Input, PrepareOptions};
use ainrnn::data::progress::Progress;
use ainrnn::data::synth::{song_model, synth, write_synthetic, SynthOptions};
use ainrnn::data::triplets::{read_triplets_from, TripletFile};
use ainrnn::data::Dataset;

fn generate(o: &SynthOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let r = write_synthetic(o, &mut out, &Progress::hidden()).unwrap();
    assert_eq!(r.kind, "synthetic");
    assert_eq!(r.bytes, out.len() as u64);
    out
}

fn parse(bytes: &[u8]) -> TripletFile {
    read_triplets_from(
        LineReader::new(Cursor::new(bytes.to_vec())),
        Path::new("synthetic.txt"),
        true,
        &Progress::hidden(),
    )
    .unwrap()
}

fn options() -> SynthOptions {
    let mut o = SynthOptions::new(2_000, 5_000, 20.0);
    o.seed = 3;
    o
}

#[test]
fn deterministic_and_labelled() {
    let o = options();
    let a = generate(&o);
    assert_eq!(a, generate(&o), "same seed, same bytes");
    let mut o2 = o.clone();
    o2.seed = 4;
    assert_ne!(a, generate(&o2));
    let text = std::str::from_utf8(&a).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("# synthetic Taste-Profile-shaped triplets"),
        "{first}"
    );
    assert!(first.contains("seed=3"));
    let second = text.lines().nth(1).unwrap();
    let f: Vec<&str> = second.split('\t').collect();
    assert_eq!(f.len(), 3);
    assert!(
        f[0].starts_with("synthetic") && f[0].len() == 40,
        "{second}"
    );
    assert!(f[1].starts_with("SYN") && f[1].len() == 18, "{second}");
}

#[test]
fn shape_of_the_data() {
    let o = options();
    let bytes = generate(&o);
    let t = parse(&bytes);
    let x = &t.interactions;
    assert!(t.synthetic.as_deref().unwrap().starts_with("synthetic"));
    assert_eq!(t.report.malformed, 0);
    assert_eq!(x.duplicates_merged, 0, "a user's songs are distinct");
    assert_eq!(x.users(), o.users, "every user has at least one song");
    let mean = x.len() as f64 / x.users() as f64;
    assert!((mean - 20.0).abs() < 2.0, "mean songs per user {mean}");
    // Play counts: median 1, mean about 3 (Taste Profile: 2.9).
    let mut plays: Vec<f32> = x.plays.clone();
    plays.sort_by(f32::total_cmp);
    assert_eq!(plays[plays.len() / 2], 1.0);
    let mean_plays = x.total_plays() / x.len() as f64;
    assert!((2.0..4.5).contains(&mean_plays), "mean plays {mean_plays}");

    // Popularity: the 1 % most popular songs take far more than 1 % of the interactions.
    let mut pop = vec![0usize; x.songs()];
    x.indices.iter().for_each(|&s| pop[s as usize] += 1);
    pop.sort_unstable_by(|a, b| b.cmp(a));
    let top = o.songs / 100;
    let share = pop[..top].iter().sum::<usize>() as f64 / x.len() as f64;
    assert!(share > 0.15, "top 1% share {share}");

    // Taste: a user's songs concentrate in few latent clusters (uniform would give ~1/20).
    let model = song_model(&o);
    let index: std::collections::HashMap<String, usize> = (0..o.songs)
        .map(|j| (ainrnn::data::synth::song_id(j), j))
        .collect();
    let cluster_of = |id: &str| model.cluster[index[id]] as usize;
    let mut cluster_by_song = vec![0usize; x.songs()];
    for (s, id) in x.song_ids.iter().enumerate() {
        cluster_by_song[s] = cluster_of(id);
    }
    let (mut sum, mut n) = (0.0, 0);
    for u in 0..x.users() {
        let r = x.row(u);
        if r.len() < 10 {
            continue;
        }
        let mut c = [0usize; 20];
        for i in r.clone() {
            c[cluster_by_song[x.indices[i] as usize]] += 1;
        }
        sum += *c.iter().max().unwrap() as f64 / r.len() as f64;
        n += 1;
    }
    let concentration = sum / n as f64;
    assert!(concentration > 0.35, "top-cluster share {concentration}");
}

#[test]
fn synth_file_prepares_as_synthetic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("synthetic.txt");
    let mut o = SynthOptions::new(300, 1_000, 8.0);
    o.seed = 9;
    let r = synth(&o, &p).unwrap();
    assert_eq!(r.bytes, std::fs::metadata(&p).unwrap().len());
    let out = dir.path().join("s.h5");
    prepare(
        &PrepareOptions::new(Input::Triplets(p), out.clone()),
        &mut |_| {},
    )
    .unwrap();
    let d = Dataset::load(&out).unwrap();
    assert!(
        d.source.starts_with("synthetic Taste-Profile-shaped"),
        "{}",
        d.source
    );
    assert!(d.source.contains("seed=9"));

    assert!(synth(&SynthOptions::new(0, 10, 5.0), &dir.path().join("x")).is_err());
    assert!(synth(&SynthOptions::new(10, 10, 0.5), &dir.path().join("x")).is_err());
    assert!(!dir.path().join("x").exists());
}
