/**
 * The sample topology embedded in the binary (`shoal demo`): a DDS tutorial-style topology with a few task
 * kinds — a group of producers, pipelines (collections) of a sampler and a processor, a flaky task that
 * crashes twice and is restarted by its trigger, and a monitor.
 *
 * @module
 */

/** DDS topology XML of the demo. */
export const DEMO_TOPOLOGY = `<topology name="ShoalDemo">
  <var name="nPipelines" value="3"/>
  <var name="ticks" value="4"/>

  <decltrigger name="restartOnCrash" condition="TaskCrashed" action="RestartTask" arg="2"/>

  <decltask name="producer">
    <exe reachable="true">sh -c 'for i in $(seq \${ticks}); do echo "producer %taskIndex% tick $i"; sleep 0.5; done'</exe>
  </decltask>
  <decltask name="sampler">
    <exe reachable="true">sh -c 'echo "sampler of pipeline %collectionIndex% in $DDS_GROUP_NAME on slot $DDS_SLOT_ID"; sleep 30'</exe>
  </decltask>
  <decltask name="processor">
    <exe reachable="true">sh -c 'echo "processor %collectionIndex%: task $DDS_TASK_ID"; sleep 30'</exe>
  </decltask>
  <decltask name="flaky">
    <exe reachable="true">sh -c 'n=$(cat runs 2>/dev/null || echo 0); echo $((n+1)) > runs; echo "flaky run $((n+1))"; [ "$n" -ge 2 ] || exit 1; sleep 30'</exe>
    <triggers><name>restartOnCrash</name></triggers>
  </decltask>
  <decltask name="monitor">
    <exe reachable="true">sh -c 'echo "monitoring $DDS_SESSION_ID"; sleep 30'</exe>
  </decltask>

  <declcollection name="pipeline">
    <tasks>
      <name>sampler</name>
      <name>processor</name>
    </tasks>
  </declcollection>

  <main name="main">
    <task>monitor</task>
    <task>flaky</task>
    <group name="producers" n="4">
      <task>producer</task>
    </group>
    <group name="pipelines" n="\${nPipelines}">
      <collection>pipeline</collection>
    </group>
  </main>
</topology>
`;
