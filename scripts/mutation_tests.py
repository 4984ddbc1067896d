"""The test files that pin each module under mutation (read by ``scripts/mutation.py``).

A module listed here is run against these files (the first ones are its fast, focused
tests); a folder key covers every module under it; any other module runs against
``tests/<dir>/test_<name>.py`` when that file exists.
"""

EXTRA_TESTS = {
    "simlab/rng.py": [
        "tests/test_rng.py",
        "tests/test_rng_golden.py",
        "tests/test_rng_extremes.py",
        "tests/test_rng_arguments.py",
    ],
    "simlab/rng_gamma.py": [
        "tests/test_rng.py",
        "tests/test_rng_golden.py",
        "tests/test_gamma_bounds.py",
    ],
    "simlab/metrics": ["tests/metrics"],
    "simlab/metrics/base.py": ["tests/metrics", "tests/test_read_only_inputs.py"],
    # a metrics module's own tests first, then the tests that pin it through other groups
    # (the whole-run ranges and cadence tests last: their worlds take seconds to build)
    "simlab/metrics/creators.py": [
        "tests/metrics/test_creator_ranges.py",
        "tests/metrics/test_source_metrics.py",
        "tests/metrics/test_ranges.py",
    ],
    "simlab/metrics/echo.py": [
        "tests/metrics/test_echo_ranges.py",
        "tests/metrics/test_echo_metrics.py",
        "tests/metrics/test_pair_defaults.py",
        "tests/metrics/test_homogenization_nn.py",
        "tests/metrics/test_topic_measures.py",
        "tests/metrics/test_ranges.py",
        "tests/metrics/test_cadence.py",
        "tests/test_population.py",
        "tests/test_sharded_metric_bits.py",
    ],
    "simlab/intervals.py": [
        "tests/test_intervals.py",
        "tests/test_windows.py",
        "tests/dashboard/test_runmeta.py",
    ],
    "simlab/windows.py": [
        "tests/test_windows.py",
        "tests/test_windows_tables.py",
        "tests/test_windows_escalation.py",
    ],
    "simlab/paired.py": ["tests/test_paired.py"],
    "simlab/rules.py": [
        "tests/test_scenario_rules.py",
        "tests/test_malformed_rules.py",
        "tests/test_scenario.py",
        "tests/test_malformed_scenarios.py",
    ],
    "simlab/store_summary.py": [
        "tests/test_store_summary.py",
        "tests/test_report_table_interval.py",
        "tests/test_windows.py",
    ],
    "simlab/export.py": [
        "tests/test_export_layout.py",
        "tests/test_export.py",
        "tests/test_export_unwritten.py",
        "tests/test_export_propensities.py",
    ],
    "dashboard/runmeta.py": [
        "tests/dashboard/test_runmeta.py",
        "tests/dashboard/test_runmeta_cases.py",
    ],
    "dashboard/data.py": [
        "tests/dashboard/test_data.py",
        "tests/dashboard/test_data_cases.py",
    ],
    "simlab/store_read.py": [
        "tests/test_store_read.py",
        "tests/test_store.py",
        "tests/test_corrupt_runs.py",
        "tests/test_damaged_rows.py",
    ],
    "simlab/report_result.py": [
        "tests/test_report_result.py",
        "tests/test_report_table_interval.py",
    ],
    "simlab/keysets.py": [
        "tests/test_keysets.py",
        "tests/environments/test_no_repeat.py",
        "tests/environments/test_consumed_ranked.py",
        "tests/metrics/test_homogenization_nn.py",
        "tests/metrics/test_echo_metrics.py",
        "tests/test_population_parts.py",
    ],
    "simlab/batch_arrays.py": [
        "tests/test_lookup_sorted.py",
        "tests/test_batch.py",
        "tests/test_read_only_inputs.py",
    ],
    "simlab/batch.py": [
        "tests/test_batch_cases.py",
        "tests/test_batch.py",
        "tests/test_lookup_sorted.py",
        "tests/test_read_only_inputs.py",
        "tests/test_contract_rows.py",
    ],
    "simlab/scenario_overrides.py": [
        "tests/test_scenario_overrides.py",
        "tests/test_scenario.py",
        "tests/test_malformed_cli.py",
        "tests/test_malformed_scenarios.py",
    ],
    "simlab/yaml_io.py": [
        "tests/test_malformed_yaml.py",
        "tests/test_scenario.py",
        "tests/test_malformed_cli.py",
    ],
    "simlab/runlock.py": [
        "tests/test_runlock.py",
        "tests/test_store_read.py",
    ],
    "simlab/state.py": [
        "tests/test_state_tree.py",
        "tests/metrics/test_metric_state.py",
        "tests/test_checkpoint_faults.py",
    ],
    "simlab/contract.py": [
        "tests/test_contract_rows.py",
        "tests/test_model_contract.py",
        "tests/test_contract_outputs.py",
        "tests/test_testing.py",
        "tests/test_population.py",
    ],
    "simlab/population.py": [
        "tests/test_population_parts.py",
        "tests/test_population.py",
        "tests/test_sharded_metric_bits.py",
        "tests/test_contract_outputs.py",
    ],
    "simlab/metrics/topics.py": [
        "tests/metrics",
        "tests/test_population.py",
        "tests/test_sharded_metric_bits.py",
    ],
    "simlab/metrics/fairness.py": [
        "tests/metrics/test_exposure_ranges.py",
        "tests/metrics/test_metrics.py",
        "tests/metrics/test_item_fairness.py",
        "tests/metrics/test_item_fairness_metric.py",
        "tests/metrics/test_creator_ranges.py",
        "tests/metrics/test_ranges.py",
        "tests/metrics/test_cadence.py",
    ],
    "simlab/metrics/item_fairness_formulas.py": [
        "tests/metrics/test_item_fairness.py",
        "tests/metrics/test_item_fairness_validation.py",
        "tests/metrics/test_item_fairness_metric.py",
        "tests/metrics/test_ranges.py",
    ],
    "simlab/metrics/homogenization_nn.py": [
        "tests/metrics/test_homogenization_nn.py",
        "tests/metrics/test_pair_defaults.py",
        "tests/metrics/test_ranges.py",
    ],
    "simlab/metrics/source.py": [
        "tests/metrics/test_source_references.py",
        "tests/metrics/test_source_metrics.py",
        "tests/metrics/test_ranges.py",
        "tests/test_sharded_metric_bits.py",
    ],
    "environments/users.py": [
        "tests/environments/test_user_dynamics.py",
        "tests/environments/test_user_utility.py",
        "tests/environments/test_environments.py",
        "tests/environments/test_churn_timing.py",
        "tests/test_topic_counts.py",
        "tests/agents/test_empty_observation.py",
    ],
    "environments/content.py": [
        "tests/environments/test_content_ecosystem.py",
        "tests/environments/test_environments.py",
        "tests/environments/test_source_mechanisms.py",
        "tests/environments/test_content_commission.py",
    ],
    "environments/adoption.py": [
        "tests/environments/test_adoption_params.py",
        "tests/environments/test_adoption.py",
    ],
    "environments/items.py": [
        "tests/environments/test_environments.py",
        "tests/environments/test_source_mechanisms.py",
        "tests/environments/test_content_commission.py",
        "tests/environments/test_item_table.py",
    ],
    "environments/content_params.py": [
        "tests/environments/test_content_params.py",
        "tests/environments/test_environments.py",
        "tests/environments/test_source_mechanisms.py",
        "tests/environments/test_content_commission.py",
    ],
    "environments/content_publish.py": [
        "tests/environments/test_content_publish.py",
        "tests/environments/test_environments.py",
        "tests/environments/test_source_mechanisms.py",
        "tests/environments/test_content_commission.py",
    ],
    "environments/creator_pool.py": [
        "tests/environments/test_creator_pool.py",
        "tests/environments/test_environments.py",
        "tests/environments/test_content_commission.py",
    ],
    "environments/common.py": [
        "tests/environments/test_environments.py",
        "tests/environments/test_common.py",
    ],
    "environments/platform.py": [
        "tests/environments/test_platform.py",
        "tests/environments/test_platform_serving.py",
        "tests/environments/test_platform_log.py",
        "tests/test_contract_outputs.py",
    ],
    "environments/interest_evolution.py": [
        "tests/environments/test_interest_evolution_paths.py",
        "tests/environments/test_interest_evolution.py",
    ],
    "environments/interest_evolution_choice.py": [
        "tests/environments/test_interest_evolution_paths.py",
        "tests/environments/test_interest_evolution_switch.py",
        "tests/environments/test_interest_evolution.py",
    ],
    "environments/recsim_common.py": [
        "tests/environments/test_recsim_common.py",
        "tests/environments/test_interest_evolution.py",
    ],
    "environments/gym": ["tests/environments/gym/test_gym_envs.py"],
    # each gym module against the fast files that exercise it (test_rllib, test_sb3 and
    # test_gym_latest are slow or optional and left out)
    "environments/gym/baselines.py": [
        "tests/environments/gym/test_gym_baselines.py",
        "tests/environments/gym/test_gym_tasks.py",
    ],
    "environments/gym/creators.py": [
        "tests/environments/gym/test_creators_env.py",
        "tests/environments/gym/test_gym_arguments.py",
        "tests/environments/gym/test_creators.py",
        "tests/environments/gym/test_creators_actions.py",
    ],
    "environments/gym/info.py": [
        "tests/environments/gym/test_gym_info_unit.py",
        "tests/environments/gym/test_gym_info.py",
        "tests/environments/gym/test_gym_envs.py",
    ],
    "environments/gym/platform_env.py": [
        "tests/environments/gym/test_gym_platform.py",
        "tests/environments/gym/test_gym_arguments.py",
        "tests/environments/gym/test_gym_slate_api.py",
        "tests/environments/gym/test_gym_envs.py",
        "tests/environments/gym/test_gym_info.py",
    ],
    "environments/gym/scenarios.py": [
        "tests/environments/gym/test_gym_scenario_layers.py",
        "tests/environments/gym/test_gym_arguments.py",
        "tests/environments/gym/test_gym_scenarios.py",
        "tests/environments/gym/test_gym_envs.py",
    ],
    "environments/gym/sessions.py": [
        "tests/environments/gym/test_gym_sessions.py",
        "tests/environments/gym/test_gym_actions.py",
        "tests/environments/gym/test_gym_envs.py",
        "tests/environments/gym/test_gym_info.py",
        "tests/environments/gym/test_gym_tasks.py",
    ],
    "environments/gym/slate.py": [
        "tests/environments/gym/test_gym_slate_api.py",
        "tests/environments/gym/test_gym_arguments.py",
        "tests/environments/gym/test_gym_actions.py",
        "tests/environments/gym/test_gym_envs.py",
        "tests/environments/gym/test_gym_info.py",
        "tests/environments/gym/test_gym_vector_boundaries.py",
    ],
    "environments/gym/tasks.py": [
        "tests/environments/gym/test_gym_task_definitions.py",
        "tests/environments/gym/test_gym_tasks.py",
    ],
    "agents/bandits.py": [
        "tests/agents/test_bandits.py",
        "tests/agents/test_bandit_posteriors.py",
        "tests/agents/test_bandit_params.py",
        "tests/agents/test_bandit_order.py",
        "tests/agents/test_bandit_models.py",
        "tests/agents/test_empty_observation.py",
        "tests/agents/test_tie_propensities.py",
    ],
    "agents/bandit_math.py": [
        "tests/agents/test_bandits.py",
        "tests/agents/test_bandit_posteriors.py",
        "tests/agents/test_bandit_math.py",
    ],
    "agents/bandit_models.py": [
        "tests/agents/test_bandits.py",
        "tests/agents/test_bandit_posteriors.py",
        "tests/agents/test_bandit_models.py",
        "tests/agents/test_bandit_order.py",
    ],
    "agents/baselines.py": [
        "tests/agents/test_agents.py",
        "tests/agents/test_baseline_rankings.py",
        "tests/agents/test_tie_propensities.py",
    ],
    "agents/base.py": ["tests/agents/test_agents.py", "tests/agents/test_base.py"],
    "agents/rerank.py": [
        "tests/agents/test_rerank_references.py",
        "tests/agents/test_rerank.py",
        "tests/agents/test_rerank_penalty.py",
    ],
    "agents/ties.py": ["tests/agents/test_tie_propensities.py"],
    "agents/rerank_groups.py": [
        "tests/agents/test_rerank_groups_references.py",
        "tests/agents/test_rerank.py",
    ],
    "agents/neural.py": [
        "tests/agents/test_neural_agents.py",
        "tests/agents/test_neural.py",
        "tests/agents/test_param_bounds.py",
    ],
    "agents/neural_train.py": [
        "tests/agents/test_training_diverged.py",
        "tests/agents/test_neural_train.py",
        "tests/agents/test_neural.py",
        "tests/agents/test_lazy_adam.py",
    ],
    "agents/gru4rec_model.py": [
        "tests/agents/test_gru4rec_model.py",
        "tests/agents/test_neural_agents.py",
        "tests/agents/test_neural.py",
    ],
    "agents/two_tower.py": [
        "tests/agents/test_two_tower_serving.py",
        "tests/agents/test_two_tower_train.py",
        "tests/agents/test_two_tower.py",
        "tests/agents/test_source_debias.py",
        "tests/agents/test_param_bounds.py",
    ],
    "agents/two_tower_train.py": [
        "tests/agents/test_two_tower_train.py",
        "tests/agents/test_two_tower.py",
        "tests/agents/test_source_debias.py",
    ],
    # test_slate_ts.py's world runs (a minute) and check_agent (10 s) left out: too slow per mutant
    "agents/slate_ts.py": [
        *(
            f"tests/agents/test_slate_ts.py::{name}"
            for name in (
                "test_in_slate_uses_every_candidate_when_k_equals_c",
                "test_a_users_slate_does_not_depend_on_who_else_is_served",
                "test_posterior_means_rank_items_of_the_users_group_first",
                "test_laplace_posterior_shrinks_with_data",
                "test_draws_match_posterior_moments",
            )
        ),
        "tests/agents/test_bandit_posteriors.py",
        "tests/agents/test_slate_ts_agent.py",
        "tests/agents/test_slate_ts_tables.py",
        "tests/agents/test_startup_learning.py::test_slate_ts_fits_the_startup_users_profiles",
    ],
    "agents/slate_ts_model.py": [
        "tests/agents/test_slate_ts_fit.py",
        "tests/agents/test_slate_ts.py",
        "tests/agents/test_bandit_posteriors.py",
    ],
    # tests/agents/test_generative.py takes ~45 s (world runs, hit rates): the focused files
    # below take seconds and hold the references of each module
    "agents/generative.py": ["tests/agents/test_generative_agent.py"],
    "agents/generative_quantiser.py": ["tests/agents/test_generative_quantiser.py"],
    "agents/generative_model.py": [
        "tests/agents/test_generative_model.py",
        "tests/agents/test_generative_prefix_loss.py",
    ],
    "agents/generative_decoding.py": ["tests/agents/test_generative_decoding.py"],
    "agents/generative_params.py": ["tests/agents/test_generative_params.py"],
    "agents/content_filtering.py": [
        "tests/agents/test_chaney_agents.py",
        "tests/agents/test_startup_learning.py",
        "tests/agents/test_tie_propensities.py",
    ],
    "agents/cumulative.py": [
        "tests/agents/test_chaney_agents.py",
        "tests/agents/test_cumulative.py",
        "tests/agents/test_cumulative_head.py",
    ],
    "agents/implicit_mf.py": [
        "tests/agents/test_chaney_agents.py",
        "tests/agents/test_implicit_mf.py",
        "tests/agents/test_param_bounds.py",
        "tests/agents/test_tie_propensities.py",
    ],
    "agents/interleave.py": ["tests/agents/test_interleave.py"],
    "agents/nnls.py": ["tests/agents/test_nnls.py", "tests/agents/test_chaney_agents.py"],
    "agents/social_filtering.py": [
        "tests/agents/test_chaney_agents.py",
        "tests/agents/test_social_filtering.py",
        "tests/agents/test_tie_propensities.py",
    ],
    "agents/isotropy.py": ["tests/agents/test_source_controls.py", "tests/agents/test_isotropy.py"],
    "environments/social_graph.py": [
        "tests/environments/test_social_graph.py",
        "tests/environments/test_chaney.py",
    ],
    "environments/chaney.py": [
        "tests/environments/test_chaney.py",
        "tests/environments/test_chaney_draws.py",
        "tests/environments/test_consumed_ranked.py",
        "tests/test_topic_counts.py",
    ],
    "environments/chaney_memo.py": [
        "tests/environments/test_chaney.py",
        "tests/environments/test_chaney_draws.py",
    ],
}
