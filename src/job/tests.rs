use std::path::Path;

use super::*;

const JOB: &str = r#"
name = "acme-hourly"

[window]
start = "2026-11-05T00:00:00+08:00"
end   = "2026-11-05T03:00:00+08:00"
slack = "5m"

[[source]]
name     = "upyun"
format   = "upyun"
shards   = "file:///data/upyun/%Y%m%d/%H%M/*.gz"
timezone = "+08:00"

[[source]]
name     = "nginx-edge"
format   = "nginx"
shards   = "nginx/{domain}/%Y%m%d/%H%M.log.gz"
timezone = "+08:00"

[output]
root     = "file:///srv/fused"
path     = "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz"
format   = "json"
timezone = "+08:00"
"#;

fn load(text: &str, overrides: &[&str]) -> Result<Job, JobError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    JobFile::from_toml(text, Path::new("job.toml"), &overrides)?.validate(Path::new("/jobs"))
}

#[test]
fn the_documented_job_file_validates() {
    let job = load(JOB, &[]).unwrap();
    assert_eq!(job.name, "acme-hourly");
    assert_eq!(job.window.end_ms - job.window.start_ms, 3 * time::HOUR_MS);
    assert_eq!(job.window.slack_ms, 5 * time::MINUTE_MS);
    assert_eq!(job.sources.len(), 2);
    assert_eq!(
        job.sources[0].shards.root,
        Location::Local("/data/upyun".into())
    );
    assert_eq!(job.sources[0].shards.segments.len(), 3);
    assert_eq!(
        job.sources[1].shards.root,
        Location::Local("/jobs/nginx".into())
    );
    assert_eq!(job.sources[1].tz_offset_secs, 8 * 3600);
    assert_eq!(job.output.template.bucket_ms, time::HOUR_MS);
    assert_eq!(job.output.gzip_level, DEFAULT_GZIP_LEVEL);
    assert_eq!(job.on_corrupt_shard, CorruptShardPolicy::Fail);
    assert_eq!(job.window_id(), "20261104T160000Z-20261104T190000Z");
}

#[test]
fn set_overrides_window_and_typed_values() {
    let job = load(
        JOB,
        &[
            "window.start=2026-11-05T01:00:00+08:00",
            "output.gzip_level=9",
            "source.1.timezone=UTC",
            "on_corrupt_shard=skip",
        ],
    )
    .unwrap();
    assert_eq!(
        job.window.start_ms,
        time::parse_instant("t", "2026-11-05T01:00:00+08:00").unwrap()
    );
    assert_eq!(job.output.gzip_level, 9);
    assert_eq!(job.sources[1].tz_offset_secs, 0);
    assert_eq!(job.on_corrupt_shard, CorruptShardPolicy::Skip);
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (&["window.end=2026-11-04T00:00:00+08:00"], "window.end"),
        (&["window.slack=five"], "window.slack"),
        (&["source.0.format=nosuch"], "nosuch"),
        (&["source.0.timezone=Mars/Olympus"], "source[0].timezone"),
        (&["output.path=%Y%m%d%H.gz"], "output.path"),
        (&["output.gzip_level=11"], "output.gzip_level"),
        (&["source.9.name=x"], "--set source.9.name=x"),
        (&["bogus_key=1"], "bogus_key"),
        (&["window"], "expected key=value"),
        (
            &["source.1.shards=nginx/%Y%m%d/%H%M.log.gz"],
            "needs {domain}",
        ),
    ];
    for (overrides, needle) in cases {
        let err = load(JOB, overrides).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
}

#[test]
fn bare_toml_datetimes_are_accepted() {
    let text = JOB.replace(
        "start = \"2026-11-05T00:00:00+08:00\"",
        "start = 2026-11-05T00:00:00+08:00",
    );
    let job = load(&text, &[]).unwrap();
    assert_eq!(job.window.end_ms - job.window.start_ms, 3 * time::HOUR_MS);
}

#[test]
fn check_collects_every_problem_in_file_order() {
    let problems = JobFile::from_toml(
        JOB,
        Path::new("job.toml"),
        &[
            "name=".to_string(),
            "window.slack=soon".to_string(),
            "source.1.format=nosuch".to_string(),
            "output.timezone=Mars".to_string(),
            "output.store.concurrency=0".to_string(),
        ],
    )
    .unwrap()
    .check(Path::new("/jobs"))
    .unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let keys = [
        "'name'",
        "'window.slack'",
        "'source[1].format'",
        "'output.timezone'",
        "'output.store.concurrency'",
    ];
    assert_eq!(text.len(), keys.len(), "{text:#?}");
    for (t, k) in text.iter().zip(keys) {
        assert!(t.contains(k), "{t} does not name {k}");
    }
    // validate stops at the first of them.
    let first = load(JOB, &["name=", "window.slack=soon"]).unwrap_err();
    assert!(first.to_string().contains("'name'"), "{first}");
}

#[test]
fn the_done_flag_goes_where_the_window_is_complete() {
    // (overrides, marker relative to the output root)
    let cases: [(&[&str], Option<&str>); 5] = [
        // The documented job: domain first, three hours: the output root.
        (&[], Some("_SUCCESS")),
        (
            &[
                "output.path=%Y/%m/%d/%H/{domain}.log.gz",
                "window.end=2026-11-05T01:00:00+08:00",
            ],
            Some("2026/11/05/00/_SUCCESS"),
        ),
        (
            &[
                "output.path=%Y/%m/%d/%H/{domain}.log.gz",
                "window.end=2026-11-06T00:00:00+08:00",
            ],
            Some("2026/11/05/_SUCCESS"),
        ),
        (
            &["output.path=%Y/%m/%d/%H/{domain}.log.gz"],
            Some("_SUCCESS"),
        ),
        (&["output.success_marker=false"], None),
    ];
    for (overrides, want) in cases {
        let job = load(JOB, overrides).unwrap();
        assert_eq!(job.success_marker().as_deref(), want, "{overrides:?}");
    }
    let err = load(JOB, &["output.success_marker=yes"]).unwrap_err();
    assert!(err.to_string().contains("success_marker"), "{err}");
}

#[test]
fn max_file_size_gives_numbered_parts_named_by_default_or_by_part_name() {
    let job = load(JOB, &[]).unwrap();
    assert!(job.output.parts.is_none());

    let job = load(JOB, &["output.max_file_size=1.5G"]).unwrap();
    let parts = job.output.parts.expect("a limit");
    assert_eq!(parts.max_file_size, 3 << 29);
    let hour = time::parse_instant("t", "2026-11-05T02:00:00+08:00").unwrap();
    assert_eq!(
        parts.template.render_part("a.com", hour, 3),
        "a.com/20261105/a.com_2026110502.log.part-00003.gz"
    );

    let job = load(
        JOB,
        &[
            "output.max_file_size=1048576",
            "output.part_name={domain}/%Y%m%d/{domain}_%Y%m%d%H-{part}.log.gz",
        ],
    )
    .unwrap();
    let parts = job.output.parts.expect("a limit");
    assert_eq!(parts.max_file_size, 1 << 20);
    assert_eq!(
        parts.template.render_part("a.com", hour, 12),
        "a.com/20261105/a.com_2026110502-00012.log.gz"
    );
}

#[test]
fn bad_part_settings_name_the_key_and_why() {
    let cases: &[(&[&str], &str)] = &[
        (&["output.max_file_size=512k"], "must be at least 1 MiB"),
        (&["output.max_file_size=lots"], "output.max_file_size"),
        (
            &["output.part_name=x-{part}.gz"],
            "needs output.max_file_size",
        ),
        (
            &[
                "output.max_file_size=1g",
                "output.part_name={domain}/%Y%m%d%H.gz",
            ],
            "must contain {part} exactly once",
        ),
        (
            &[
                "output.max_file_size=1g",
                "output.part_name={domain}/%Y%m%d-{part}.gz",
            ],
            "same finest time field",
        ),
        (
            &[
                "output.max_file_size=1g",
                "output.part_name={domain}/{nope}-{part}.gz",
            ],
            "unknown placeholder {nope}",
        ),
        (
            &["output.path={domain}/%Y%m%d%H-{part}.gz"],
            "unknown placeholder {part}",
        ),
    ];
    for (overrides, needle) in cases {
        let err = load(JOB, overrides).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
    let err = load(JOB, &["output.max_file_size=512k"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("output.max_file_size"), "{err}");
}
