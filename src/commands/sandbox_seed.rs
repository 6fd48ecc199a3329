//! `sandbox-seed`: a generated large org as a sandbox seed (see `sandbox::seed_gen`).

use crate::cli::SandboxSeedArgs;
use crate::sandbox::seed_gen;

/// The seed as pretty JSON with a final newline.
pub fn render(args: &SandboxSeedArgs) -> Result<String, String> {
    let people = usize::try_from(args.people).map_err(|_| "--people is too large".to_string())?;
    let departments =
        usize::try_from(args.departments).map_err(|_| "--departments is too large".to_string())?;
    let seed = seed_gen::generate(people, departments, args.rng_seed);
    serde_json::to_string_pretty(&seed)
        .map(|text| text + "\n")
        .map_err(|e| format!("cannot write the seed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::sandbox::Seed;
    use clap::Parser;

    fn args(argv: &[&str]) -> SandboxSeedArgs {
        let mut full = vec!["lark-mcp-server", "sandbox-seed"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::SandboxSeed(a) => a,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn prints_a_seed_the_loader_accepts() {
        let a = args(&["--people", "120", "--departments", "12", "--rng-seed", "5"]);
        let text = render(&a).expect("renders");
        assert!(text.ends_with("}\n"));
        let seed = Seed::from_json(&text).expect("loads");
        assert_eq!((seed.users.len(), seed.departments.len()), (120, 12));
        assert_eq!(render(&a).expect("renders"), text);
    }

    #[test]
    fn defaults_and_limits() {
        let a = args(&[]);
        assert_eq!((a.people, a.departments, a.rng_seed), (10_000, 300, 1));
        for bad in [["--people", "0"], ["--departments", "0"]] {
            let mut full = vec!["lark-mcp-server", "sandbox-seed"];
            full.extend_from_slice(&bad);
            assert!(Cli::try_parse_from(full).is_err(), "{bad:?}");
        }
    }
}
