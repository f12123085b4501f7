-- ArgoCD health check for parallelsynth.io/RenderBatch (the operator creates them under a
-- SynthDataset; ArgoCD shows them in the dataset's resource tree):
--   being deleted                                 -> Progressing (folded into its dataset)
--   no status yet, or status older than the spec  -> Progressing
--   phase Succeeded                               -> Healthy
--   phase Failed                                  -> Degraded, with the shards and why
--   phase Suspended                               -> Suspended (parallelism 0)
--   anything else (Pending, Running)              -> Progressing, with shards done and the Job
local hs = {}
local status = obj.status
local spec = obj.spec or {}

local function shards(st)
  local msg = st.phase
  if spec.shardCount ~= nil then
    msg = msg .. ": shards " .. (st.completedShards ~= nil and st.completedShards ~= "" and st.completedShards or "none")
      .. " of 0-" .. string.format("%d", spec.shardCount - 1) .. " committed"
  end
  if st.job ~= nil and st.job ~= "" then
    msg = msg .. " (Job " .. st.job .. ", attempt " .. string.format("%d", st.attempt or 1) .. ")"
  end
  return msg
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting: the batch is folded into its dataset"
  return hs
end

if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the parallel-synth operator"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = shards(status)
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed: shards " .. (status.failedShards or "?") .. " failed"
  if status.message ~= nil and status.message ~= "" then hs.message = hs.message .. ": " .. status.message end
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = shards(status)
else
  hs.status = "Progressing"
  hs.message = shards(status)
end
return hs
