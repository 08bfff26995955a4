//! The mount configuration from whole command lines: what each flag
//! becomes, and the message for each bad combination.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::*;
use crate::cli::Cli;
use crate::creds::ProviderSpec;

/// The probe of a custom endpoint: the tests' endpoints are COS servers.
fn cos_server(_: &str, _: Option<std::net::SocketAddr>) -> Result<Option<Provider>, String> {
    Ok(Some(Provider::Cos))
}

fn config(args: &[&str]) -> Result<MountConfig, String> {
    config_with_env(args, &[])
}

/// Parses with the given environment and no default passwd files; custom
/// endpoints answer as COS servers.
fn config_with_env(args: &[&str], vars: &[(&str, &str)]) -> Result<MountConfig, String> {
    config_probed(args, vars, Ok(Some(Provider::Cos)))
}

#[test]
fn builds_a_config_from_keys_and_prefix() {
    let c = config(&[
        "b-125:/data/x",
        "/mnt",
        "--region",
        "ap-beijing",
        "--secret-id",
        "AK",
        "--secret-key",
        "SK",
    ])
    .unwrap();
    assert_eq!(
        (c.bucket.as_str(), c.fs.prefix.as_str()),
        ("b-125", "data/x/")
    );
    assert_eq!(
        c.target,
        Target::Cos {
            https: true,
            domain: Domain::VirtualHosted
        }
    );
    assert!(matches!(c.credentials, Selected::Static { .. }));
    assert_eq!(c.fs.metadata_ttl, Duration::from_secs(1));
    assert_eq!(c.fs.memory_bytes, 128 << 20);
}

#[test]
fn each_bucket_and_prefix_gets_its_own_cache_folder() {
    let keys = ["--region", "ap-beijing", "--anonymous"];
    let folder = |source: &str| {
        let mut args = vec![source, "/mnt", "--cache-dir", "/var/cache/cos"];
        args.extend_from_slice(&keys);
        config(&args).unwrap().fs.disk_cache.map(|d| d.dir)
    };
    assert_eq!(folder("b-125"), Some(PathBuf::from("/var/cache/cos/b-125")));
    let (a, b) = (folder("b-125:/a").unwrap(), folder("b-125:/b").unwrap());
    assert_ne!(
        a, b,
        "two prefixes of one bucket do not lock each other out"
    );
    assert!(
        a.starts_with("/var/cache/cos")
            && a.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("b-125-")
    );
    let mut off = vec!["b-125", "/mnt"];
    off.extend_from_slice(&keys);
    assert_eq!(config(&off).unwrap().fs.disk_cache, None, "off by default");
}

#[test]
fn local_mode_needs_only_a_mountpoint() {
    let c = config(&["--local", "/tmp/data", "/mnt"]).unwrap();
    assert_eq!(c.bucket, LOCAL_BUCKET);
    assert_eq!(c.mount.mountpoint, PathBuf::from("/mnt"));
    assert_eq!(c.credentials, Selected::Generated);
}

#[test]
fn explains_bad_input() {
    let err = |a: &[&str]| config(a).unwrap_err();
    assert!(err(&["bucket", "/m", "--region", "r", "--anonymous"]).contains("<name>-<appid>"));
    assert!(err(&["b-1", "/m", "--anonymous"]).contains("--region is required"));
    assert!(
        err(&["b-1", "/m", "--region", "ap-x", "--secret-id", "A"])
            .contains("without --secret-key")
    );
    assert!(err(&["b-1", "/m", "--region", "AP", "--anonymous"]).contains("region"));
    assert!(
        err(&[
            "b-1",
            "/m",
            "--region",
            "r",
            "--anonymous",
            "--cache-size",
            "lots"
        ])
        .contains("--cache-size")
    );
    assert!(err(&["b-1", "/m", "--region", "r", "--anonymous", "--umask", "99"]).contains("octal"));
    assert!(
        err(&[
            "b-1",
            "/m",
            "--region",
            "r",
            "--anonymous",
            "--metadata-ttl",
            "soon"
        ])
        .contains("duration")
    );
    assert!(err(&["b-1", "/m", "--endpoint", "localhost:9", "--anonymous"]).contains("http://"));
    assert!(err(&["b-1"]).contains("MOUNTPOINT"));
}

#[test]
fn picks_each_endpoint_kind() {
    let endpoint = |extra: &[&str]| {
        let args = [
            &["b-1", "/m", "--region", "ap-beijing", "--anonymous"][..],
            extra,
        ]
        .concat();
        let c = config(&args).unwrap();
        (c.target.endpoint(&c.bucket, &c.region).unwrap(), c)
    };
    let (e, _) = endpoint(&[]);
    assert_eq!(e.bucket_url(), "https://b-1.cos.ap-beijing.myqcloud.com/");
    let (e, _) = endpoint(&["--path-style", "--http"]);
    assert_eq!(e.bucket_url(), "http://cos.ap-beijing.myqcloud.com/b-1/");
    let (e, _) = endpoint(&["--accelerate"]);
    assert_eq!(e.bucket_url(), "https://b-1.cos.accelerate.myqcloud.com/");
    let (e, c) = endpoint(&["--website"]);
    assert_eq!(
        e.bucket_url(),
        "https://b-1.cos-website.ap-beijing.myqcloud.com/"
    );
    assert!(c.website && c.fs.no_listing && c.fs.read_only && c.mount.read_only);
    let (e, c) = endpoint(&["--endpoint", "http://gw:81", "--website"]);
    assert_eq!(e.bucket_url(), "http://gw:81/");
    assert!(c.fs.no_listing);
    let (e, _) = endpoint(&["--endpoint", "https://gw", "--path-style"]);
    assert_eq!(e.bucket_url(), "https://gw/b-1/");
    // cosfs's `url=https://cos.<region>.myqcloud.com`: the bucket goes in
    // front, and the region comes from the URL.
    let c = config(&[
        "b-1",
        "/m",
        "--url",
        "https://cos.ap-chengdu.myqcloud.com",
        "--anonymous",
    ])
    .unwrap();
    let e = c.target.endpoint(&c.bucket, &c.region).unwrap();
    assert_eq!(e.bucket_url(), "https://b-1.cos.ap-chengdu.myqcloud.com/");
    assert_eq!(c.region, "ap-chengdu");
    let (_, c) = endpoint(&[]);
    assert!(!c.website && !c.fs.no_listing && !c.fs.read_only);
}

#[test]
fn resolve_must_name_the_endpoint_host() {
    let base = ["b-1", "/m", "--region", "ap-beijing", "--anonymous"];
    let with = |extra: &[&str]| config(&[&base[..], extra].concat());
    let c = with(&[
        "--resolve",
        "b-1.cos.ap-beijing.myqcloud.com:127.0.0.1:8080",
    ])
    .unwrap();
    let r = c.resolve.unwrap();
    assert_eq!(r.host, "b-1.cos.ap-beijing.myqcloud.com");
    assert_eq!(r.addr, "127.0.0.1:8080".parse().unwrap());
    let c = with(&[
        "--path-style",
        "--resolve",
        "cos.ap-beijing.myqcloud.com:[::1]:80",
    ])
    .unwrap();
    assert_eq!(c.resolve.unwrap().addr, "[::1]:80".parse().unwrap());
    let e = with(&["--resolve", "other.example.com:127.0.0.1:80"]).unwrap_err();
    assert!(
        e.contains("requests go to b-1.cos.ap-beijing.myqcloud.com"),
        "{e}"
    );
    let e = with(&["--resolve", "b-1.cos.ap-beijing.myqcloud.com"]).unwrap_err();
    assert!(e.contains("HOST:IP:PORT"), "{e}");
}

#[test]
fn contradictory_endpoint_options_are_refused() {
    let base = ["b-1", "/m", "--region", "ap-beijing", "--anonymous"];
    let err = |extra: &[&str]| config(&[&base[..], extra].concat()).unwrap_err();
    assert!(err(&["--accelerate", "--website"]).contains("--accelerate and --website"));
    assert!(err(&["--accelerate", "--path-style"]).contains("cannot be combined"));
    assert!(err(&["--website", "--path-style"]).contains("cannot be combined"));
    assert!(err(&["--endpoint", "http://x", "--http"]).contains("write http://"));
    assert!(
        err(&["--endpoint", "http://x", "--accelerate"]).contains("--endpoint and --accelerate")
    );
    let e = config(&["--local", "/d", "/m", "--website"]).unwrap_err();
    assert!(e.contains("--local and --website"), "{e}");
}

#[test]
fn check_needs_a_bucket_and_no_mountpoint() {
    let parse = |args: &[&str]| {
        let full = [&["cosmount"][..], args].concat();
        let around = Surroundings {
            env: &|_: &str| None,
            default_passwd_files: Vec::new(),
            aws: crate::creds::aws::AwsDefaults::default(),
        };
        MountConfig::for_command(
            "check",
            &Cli::try_parse_from(full).unwrap().mount,
            &around,
            &cos_server,
        )
    };
    let c = parse(&["b-1", "--region", "r", "--anonymous"]).unwrap();
    assert_eq!(c.bucket, "b-1");
    assert!(
        parse(&["b-1", "/mnt", "--region", "r", "--anonymous"])
            .unwrap_err()
            .contains("no mountpoint")
    );
    assert!(
        parse(&["--region", "r", "--anonymous"])
            .unwrap_err()
            .contains("missing BUCKET")
    );
}

#[test]
fn allow_other_turns_on_default_permissions() {
    let c = config(&["b-1", "/m", "--region", "r", "--anonymous", "--allow-other"]).unwrap();
    assert!(c.mount.default_permissions);
    let c = config(&[
        "b-1",
        "/m",
        "--region",
        "r",
        "--anonymous",
        "--allow-other",
        "--no-default-permissions",
    ])
    .unwrap();
    assert!(!c.mount.default_permissions);
}

#[test]
fn environment_keys_and_the_source_picker() {
    let base = ["b-1", "/m", "--region", "ap-beijing"];
    let env = [
        ("TENCENTCLOUD_SECRET_ID", "AKIDtc"),
        ("TENCENTCLOUD_SECRET_KEY", "TCKEY"),
    ];
    let c = config_with_env(&base, &env).unwrap();
    assert_eq!(
        c.credentials.origin().unwrap(),
        "environment TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY"
    );
    assert!(c.credential_notes.is_empty());
    let with_cli = [&base[..], &["--secret-id", "AKIDcli", "--secret-key", "K"]].concat();
    let c = config_with_env(&with_cli, &env).unwrap();
    assert_eq!(c.credentials.origin().unwrap(), "the command line");
    assert_eq!(
        c.credential_notes,
        [
            "credentials come from the command line; also configured but not used: env (choose with --credential-source)"
        ]
    );
    let picked = [&with_cli[..], &["--credential-source", "env"]].concat();
    let c = config_with_env(&picked, &env).unwrap();
    assert!(c.credentials.origin().unwrap().starts_with("environment"));
    let c = config_with_env(&[&base[..], &["--anonymous"]].concat(), &env).unwrap();
    assert_eq!(c.credentials, Selected::Anonymous);
}

#[test]
fn refreshing_sources_and_their_errors() {
    let base = ["b-1", "/m", "--region", "ap-beijing"];
    let c = config(
        &[
            &base[..],
            &[
                "--cam-role",
                "r",
                "--cam-role-endpoint",
                "http://127.0.0.1:9/m",
            ],
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(c.credentials.origin().unwrap(), "cam_role r");
    let c = config(
        &[
            &base[..],
            &[
                "--secret-id",
                "A",
                "--secret-key",
                "K",
                "--role-arn",
                "qcs::cam::uin/1:roleName/r",
                "--sts-duration",
                "15m",
            ],
        ]
        .concat(),
    )
    .unwrap();
    let Selected::Refreshing(ProviderSpec::AssumeRole(sts)) = &c.credentials else {
        panic!("{:?}", c.credentials)
    };
    assert_eq!(
        (sts.duration, sts.region.as_str()),
        (Duration::from_secs(900), "ap-beijing")
    );
    let err = |a: &[&str]| config(&[&base[..], a].concat()).unwrap_err();
    assert!(err(&["--credential-source", "vault"]).contains("not one of"));
    assert!(err(&["--anonymous", "--credential-source", "env"]).contains("conflicts"));
    assert!(
        err(&["--role-arn", "x", "--anonymous", "--sts-duration", "soon"])
            .contains("--sts-duration")
    );
    assert!(err(&[]).contains("no credentials found"));
}

#[test]
fn the_profile_flag_reaches_the_credential_options() {
    for flag in [&["--profile", "dev"][..], &["-o", "profile=dev"][..]] {
        let args: Vec<std::ffi::OsString> = [
            &["cosmount", "b-125", "/mnt", "--region", "ap-beijing"][..],
            flag,
        ]
        .concat()
        .into_iter()
        .map(Into::into)
        .collect();
        let expanded = crate::cli::expand_mount_options(args).unwrap();
        let cli = Cli::try_parse_from(expanded).unwrap();
        assert_eq!(cli.mount.profile.as_deref(), Some("dev"));
        let lookup = |_: &str| None;
        let around = Surroundings {
            env: &lookup,
            default_passwd_files: Vec::new(),
            aws: crate::creds::aws::AwsDefaults::default(),
        };
        let e = MountConfig::from_args_in(&cli.mount, &around, &cos_server).unwrap_err();
        assert!(
            e.contains("--profile") && e.contains("for S3 targets"),
            "{e}"
        );
    }
}

/// [`config_with_env`] whose custom endpoints answer as `answer` says.
fn config_probed(
    args: &[&str],
    vars: &[(&str, &str)],
    answer: Result<Option<Provider>, String>,
) -> Result<MountConfig, String> {
    let mut full = vec!["cosmount"];
    full.extend_from_slice(args);
    let lookup = |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    };
    let around = Surroundings {
        env: &lookup,
        default_passwd_files: Vec::new(),
        aws: crate::creds::aws::AwsDefaults::default(),
    };
    let cli = Cli::try_parse_from(full).map_err(|e| e.to_string())?;
    MountConfig::from_args_in(&cli.mount, &around, &|_, _| answer.clone())
}

const AWS_KEYS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
];

#[test]
fn s3_without_an_endpoint_is_aws_in_us_east_1_with_aws_keys() {
    let c = config_probed(
        &["bench", "/mnt", "--provider", "s3"],
        AWS_KEYS,
        Err("not asked".into()),
    )
    .unwrap();
    assert_eq!(c.provider, Provider::S3);
    assert_eq!(c.region, "us-east-1");
    assert_eq!(
        c.target,
        Target::Custom {
            url: "https://s3.us-east-1.amazonaws.com".into(),
            path_style: false
        }
    );
    let endpoint = c.target.endpoint(&c.bucket, &c.region).unwrap();
    assert_eq!(endpoint.host, "bench.s3.us-east-1.amazonaws.com");
    assert_eq!(c.client_config(endpoint).provider, Provider::S3);
    let Selected::Static { origin, .. } = &c.credentials else {
        panic!("{:?}", c.credentials);
    };
    assert!(origin.contains("AWS_ACCESS_KEY_ID"), "{origin}");
}

#[test]
fn the_provider_is_also_a_mount_option() {
    let args: Vec<std::ffi::OsString> = [
        "cosmount",
        "bench",
        "/mnt",
        "-o",
        "provider=s3,region=eu-west-1",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    let expanded = crate::cli::expand_mount_options(args).unwrap();
    let expanded: Vec<String> = expanded
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let expanded: Vec<&str> = expanded.iter().map(String::as_str).skip(1).collect();
    let c = config_probed(&expanded, AWS_KEYS, Err("not asked".into())).unwrap();
    assert_eq!((c.provider, c.region.as_str()), (Provider::S3, "eu-west-1"));
    assert_eq!(
        c.target.endpoint(&c.bucket, &c.region).unwrap().host,
        "bench.s3.eu-west-1.amazonaws.com"
    );
}

#[test]
fn a_custom_endpoint_speaks_what_it_answers() {
    let args = [
        "bench",
        "/mnt",
        "--endpoint",
        "http://127.0.0.1:8333",
        "--path-style",
    ];
    let s3 = config_probed(&args, AWS_KEYS, Ok(Some(Provider::S3))).unwrap();
    assert_eq!(
        (s3.provider, s3.region.as_str()),
        (Provider::S3, "us-east-1")
    );
    let e = config_probed(&args, AWS_KEYS, Ok(Some(Provider::Cos))).unwrap_err();
    assert!(
        e.contains("<name>-<appid>") && e.contains("--provider s3"),
        "{e}"
    );
    let e = config_probed(&args, AWS_KEYS, Err("answered 200 without ...".into())).unwrap_err();
    assert!(e.contains("answered"), "{e}");
    // A server that does not answer is taken for COS (the mount then
    // says why it cannot reach it).
    let unreachable = [
        "b-125",
        "/mnt",
        "--endpoint",
        "http://127.0.0.1:1",
        "--anonymous",
    ];
    let c = config_probed(&unreachable, &[], Ok(None)).unwrap();
    assert_eq!(c.provider, Provider::Cos);
    // Named, nothing is asked.
    let named = [&args[..], &["--provider", "s3"]].concat();
    let c = config_probed(&named, AWS_KEYS, Err("not asked".into())).unwrap();
    assert_eq!(c.provider, Provider::S3);
}

#[test]
fn domains_imply_their_dialect_and_cos_names() {
    let aws = [
        "bench",
        "/mnt",
        "--endpoint",
        "https://s3.eu-west-1.amazonaws.com",
    ];
    let c = config_probed(&aws, AWS_KEYS, Err("not asked".into())).unwrap();
    assert_eq!((c.provider, c.region.as_str()), (Provider::S3, "eu-west-1"));
    let e = config_probed(
        &["bench", "/mnt", "--region", "ap-beijing"],
        &[],
        Err("not asked".into()),
    )
    .unwrap_err();
    assert!(e.contains("--provider s3"), "{e}");
    let e = config_probed(
        &["bench", "/mnt", "--provider", "s3", "--accelerate"],
        AWS_KEYS,
        Err("not asked".into()),
    )
    .unwrap_err();
    assert!(e.contains("COS's domains"), "{e}");
    let e = config_probed(
        &["/mnt", "--local", "/tmp/x", "--provider", "s3"],
        &[],
        Err("not asked".into()),
    )
    .unwrap_err();
    assert!(e.contains("--local"), "{e}");
}
