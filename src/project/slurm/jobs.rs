//! Which stages go into which batch job. Independent stages of one kind
//! share a job array; a stage whose one input is task `t` of an array joins
//! an array of its kind as task `t` and starts after that task alone
//! (`aftercorr`); any other stage is a job of its own, after each of its
//! inputs' jobs (`afterok`). Jobs come out in an order where every job's
//! parents come first.

use std::collections::BTreeMap;

use crate::plan::StageKind;

/// The most tasks in one array: Slurm's default `MaxArraySize` is 1001
/// (task ids 0–1000).
pub const MAX_TASKS: usize = 1000;

/// What a job waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum After {
    Nothing,
    /// Each task waits for the same task of this earlier job (an array).
    Corresponding(usize),
    /// The whole job waits for these stages' jobs (sorted).
    Stages(Vec<usize>),
}

/// One `sbatch`: stages of one kind, an array when `array` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub kind: StageKind,
    /// (plan stage index, array task id).
    pub tasks: Vec<(usize, u32)>,
    pub array: bool,
    pub after: After,
}

/// A stage to submit: its plan index, kind, and the inputs that are still
/// to be built (by jobs submitted now, or already queued).
#[derive(Debug, Clone)]
pub struct ToSubmit {
    pub index: usize,
    pub kind: StageKind,
    pub waits_for: Vec<usize>,
}

/// Groups `stages` (in plan order, so inputs come first) into jobs;
/// `queued` holds the stages whose jobs are already in Slurm's queue.
pub fn group(stages: &[ToSubmit], queued: &dyn Fn(usize) -> bool) -> Vec<Job> {
    // An input another input already waits for (through its own inputs)
    // need not be waited for directly.
    let mut ancestors: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for s in stages {
        let mut all = std::collections::BTreeSet::new();
        for p in &s.waits_for {
            all.insert(*p);
            all.extend(ancestors.get(p).into_iter().flatten().copied());
        }
        ancestors.insert(s.index, all);
    }
    let reduced: Vec<ToSubmit> = stages
        .iter()
        .map(|s| ToSubmit {
            waits_for: s
                .waits_for
                .iter()
                .copied()
                .filter(|p| {
                    !s.waits_for
                        .iter()
                        .any(|q| q != p && ancestors.get(q).is_some_and(|a| a.contains(p)))
                })
                .collect(),
            ..s.clone()
        })
        .collect();
    let stages = reduced.as_slice();
    // Depth: 0 for stages waiting on nothing submitted now.
    let mut depth: BTreeMap<usize, usize> = BTreeMap::new();
    for s in stages {
        let d = s
            .waits_for
            .iter()
            .filter_map(|p| depth.get(p).map(|d| d + 1))
            .max()
            .unwrap_or(0);
        depth.insert(s.index, d);
    }
    let deepest = depth.values().copied().max().unwrap_or(0);
    let mut jobs: Vec<Job> = Vec::new();
    // Stage index -> (job, task) once placed.
    let mut placed: BTreeMap<usize, (usize, u32)> = BTreeMap::new();
    for level in 0..=deepest {
        // Arrays being filled at this level, by kind and what they wait for.
        let mut open: BTreeMap<(StageKind, After), Vec<usize>> = BTreeMap::new();
        for s in stages.iter().filter(|s| depth[&s.index] == level) {
            // Parents sit at lower levels: their jobs are complete.
            let corresponding = match s.waits_for.as_slice() {
                [p] if !queued(*p) => placed.get(p).filter(|(job, _)| jobs[*job].tasks.len() > 1),
                _ => None,
            };
            let (after, task) = match (corresponding, s.waits_for.is_empty()) {
                (Some(&(job, task)), _) => (After::Corresponding(job), Some(task)),
                (None, true) => (After::Nothing, None),
                (None, false) => {
                    let mut w = s.waits_for.clone();
                    w.sort_unstable();
                    (After::Stages(w), None)
                }
            };
            let key = (s.kind, after.clone());
            let fits = |job: &Job| {
                job.tasks.len() < MAX_TASKS
                    && task.is_none_or(|t| job.tasks.iter().all(|x| x.1 != t))
            };
            let arrays = open.entry(key).or_default();
            let j = match arrays.iter().copied().find(|&j| fits(&jobs[j])) {
                Some(j) => j,
                None => {
                    jobs.push(Job {
                        kind: s.kind,
                        tasks: Vec::new(),
                        array: true,
                        after,
                    });
                    arrays.push(jobs.len() - 1);
                    jobs.len() - 1
                }
            };
            let t = task.unwrap_or(jobs[j].tasks.len() as u32);
            jobs[j].tasks.push((s.index, t));
            placed.insert(s.index, (j, t));
        }
    }
    // A one-task array is a plain job (after its one input's job, if any).
    for job in &mut jobs {
        if job.tasks.len() == 1 {
            job.array = false;
            job.tasks[0].1 = 0;
            if let After::Corresponding(_) = job.after {
                let i = job.tasks[0].0;
                let parent = stages
                    .iter()
                    .find(|s| s.index == i)
                    .map(|s| s.waits_for.clone());
                job.after = After::Stages(parent.unwrap_or_default());
            }
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use StageKind::{Data, Eval, Train};

    fn s(index: usize, kind: StageKind, waits_for: &[usize]) -> ToSubmit {
        ToSubmit {
            index,
            kind,
            waits_for: waits_for.to_vec(),
        }
    }

    #[test]
    fn independent_stages_share_arrays_and_chains_follow_task_by_task() {
        // data; two trainings on it; two more waiting on nothing new; each
        // training's eval; one eval over two trainings.
        let stages = [
            s(0, Data, &[]),
            s(1, Train, &[0]),
            s(2, Train, &[0]),
            s(3, Train, &[]),
            s(4, Train, &[]),
            s(5, Eval, &[3]),
            s(6, Eval, &[4]),
            s(7, Eval, &[1, 2]),
            // Waits for 5, which waits for 3: only 5 counts.
            s(8, Eval, &[3, 5]),
        ];
        let jobs = group(&stages, &|_| false);
        let tasks: Vec<Vec<(usize, u32)>> = jobs.iter().map(|j| j.tasks.clone()).collect();
        assert_eq!(
            tasks,
            vec![
                vec![(0, 0)],
                vec![(3, 0), (4, 1)],
                vec![(1, 0), (2, 1)],
                vec![(5, 0), (6, 1)],
                vec![(7, 0)],
                vec![(8, 0)],
            ]
        );
        assert_eq!(jobs[5].after, After::Stages(vec![5]));
        assert!(!jobs[0].array && jobs[0].after == After::Nothing);
        assert!(jobs[1].array && jobs[1].after == After::Nothing);
        // Trainings 1 and 2 both wait for the data job: one array after it.
        assert!(jobs[2].array && jobs[2].after == After::Stages(vec![0]));
        // The evals of the array's tasks follow them task by task.
        assert!(jobs[3].array && jobs[3].after == After::Corresponding(1));
        assert!(!jobs[4].array && jobs[4].after == After::Stages(vec![1, 2]));
    }

    #[test]
    fn two_stages_after_one_task_do_not_share_an_array_task() {
        let stages = [
            s(0, Train, &[]),
            s(1, Train, &[]),
            s(2, Eval, &[0]),
            s(3, Eval, &[0]),
            s(4, Eval, &[1]),
        ];
        let jobs = group(&stages, &|_| false);
        assert_eq!(jobs[1].tasks, vec![(2, 0), (4, 1)]);
        assert_eq!(jobs[1].after, After::Corresponding(0));
        // The second eval of task 0 goes to an array of its own: one task,
        // so a plain job after stage 0.
        assert_eq!(jobs[2].tasks, vec![(3, 0)]);
        assert!(!jobs[2].array);
        assert_eq!(jobs[2].after, After::Stages(vec![0]));
    }

    #[test]
    fn queued_inputs_and_large_arrays() {
        // Stage 0 is already queued: its dependent is a plain job after it.
        let jobs = group(&[s(1, Eval, &[0]), s(2, Eval, &[0])], &|i| i == 0);
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].array && jobs[0].after == After::Stages(vec![0]));
        let many: Vec<ToSubmit> = (0..MAX_TASKS + 5).map(|i| s(i, Train, &[])).collect();
        let jobs = group(&many, &|_| false);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].tasks.len(), MAX_TASKS);
        assert_eq!(jobs[1].tasks.last(), Some(&(MAX_TASKS + 4, 4)));
    }
}
